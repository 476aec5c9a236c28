//! The shared resource: a separate process holding one counter on
//! 127.0.0.1. Clients read it with their fencing token, sleep, and write
//! the value plus one back with the same token. In fenced mode it rejects
//! any token lower than the highest it has seen, on reads as well as
//! writes (else a stale holder's write can land after a newer holder's
//! read: Kleppmann, 2016).
//!
//! ```text
//! R <token>          -> OK <value>  | STALE <highest>
//! W <token> <value>  -> OK          | STALE <highest>
//! S                  -> STATS <value> <writes> <rejected_reads> <rejected_writes> <stale_accepted>
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The resource's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// The counter's value.
    pub value: u64,
    /// Writes accepted (acknowledged).
    pub writes: u64,
    /// Reads rejected for a stale token.
    pub rejected_reads: u64,
    /// Writes rejected for a stale token.
    pub rejected_writes: u64,
    /// Writes accepted although a higher token had been seen (unfenced mode).
    pub stale_accepted: u64,
}

impl Stats {
    /// Acknowledged writes missing from the final value: every write stores
    /// the value it read plus one, so without lost updates the value equals
    /// the number of writes.
    pub fn lost_updates(&self) -> u64 {
        self.writes.saturating_sub(self.value)
    }
}

#[derive(Debug, Default)]
struct State {
    stats: Stats,
    highest: u64,
}

/// Serves the resource on `listener` until the process ends.
pub async fn serve(listener: TcpListener, fenced: bool) {
    let state = Arc::new(Mutex::new(State::default()));
    while let Ok((conn, _)) = listener.accept().await {
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let (r, mut w) = conn.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = answer(&state, fenced, &line);
                if w.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn answer(state: &Mutex<State>, fenced: bool, line: &str) -> String {
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut w = line.split_whitespace();
    let op = w.next().unwrap_or("");
    let token = w.next().and_then(|t| t.parse::<u64>().ok());
    match (op, token) {
        ("S", _) => {
            let t = &s.stats;
            format!(
                "STATS {} {} {} {} {}\n",
                t.value, t.writes, t.rejected_reads, t.rejected_writes, t.stale_accepted
            )
        }
        ("R", Some(token)) => {
            if fenced && token < s.highest {
                s.stats.rejected_reads += 1;
                return format!("STALE {}\n", s.highest);
            }
            s.highest = s.highest.max(token);
            format!("OK {}\n", s.stats.value)
        }
        ("W", Some(token)) => {
            let Some(value) = w.next().and_then(|v| v.parse::<u64>().ok()) else {
                return "ERR value\n".into();
            };
            if token < s.highest {
                if fenced {
                    s.stats.rejected_writes += 1;
                    return format!("STALE {}\n", s.highest);
                }
                s.stats.stale_accepted += 1;
            }
            s.highest = s.highest.max(token);
            s.stats.value = value;
            s.stats.writes += 1;
            "OK\n".into()
        }
        _ => "ERR request\n".into(),
    }
}

/// What the resource said to a read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Accepted; for a read, the value.
    Ok(u64),
    /// Rejected: a higher token was seen.
    Stale,
}

/// One connection to the resource.
#[derive(Debug)]
pub struct Conn {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Conn {
    /// Connects to the resource at `addr`.
    ///
    /// # Errors
    ///
    /// When it cannot connect.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Conn {
            lines: BufReader::new(r).lines(),
            w,
        })
    }

    async fn ask(&mut self, req: &str) -> std::io::Result<String> {
        self.w.write_all(req.as_bytes()).await?;
        self.lines
            .next_line()
            .await?
            .ok_or_else(|| std::io::Error::other("the resource closed the connection"))
    }

    /// Reads the value with `token`.
    ///
    /// # Errors
    ///
    /// I/O errors, or a reply that makes no sense.
    pub async fn read(&mut self, token: u64) -> std::io::Result<Reply> {
        let line = self.ask(&format!("R {token}\n")).await?;
        parse_reply(&line)
    }

    /// Writes `value` with `token`.
    ///
    /// # Errors
    ///
    /// I/O errors, or a reply that makes no sense.
    pub async fn write(&mut self, token: u64, value: u64) -> std::io::Result<Reply> {
        let line = self.ask(&format!("W {token} {value}\n")).await?;
        parse_reply(&line)
    }

    /// The resource's counters.
    ///
    /// # Errors
    ///
    /// I/O errors, or a reply that makes no sense.
    pub async fn stats(&mut self) -> std::io::Result<Stats> {
        let line = self.ask("S\n").await?;
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        match n[..] {
            [value, writes, rejected_reads, rejected_writes, stale_accepted] => Ok(Stats {
                value,
                writes,
                rejected_reads,
                rejected_writes,
                stale_accepted,
            }),
            _ => Err(std::io::Error::other(format!("bad stats reply {line:?}"))),
        }
    }
}

fn parse_reply(line: &str) -> std::io::Result<Reply> {
    let mut w = line.split_whitespace();
    match w.next() {
        Some("OK") => Ok(Reply::Ok(
            w.next().and_then(|v| v.parse().ok()).unwrap_or(0),
        )),
        Some("STALE") => Ok(Reply::Stale),
        _ => Err(std::io::Error::other(format!("bad reply {line:?}"))),
    }
}

/// The resource process, started by the driver, killed on drop.
#[derive(Debug)]
pub struct Resource {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Resource {
    /// Starts `fencelock-chaos-resource` (the binary at `bin`) and waits for
    /// its address.
    ///
    /// # Errors
    ///
    /// When it does not start or say where it listens within 10 s.
    pub async fn start(bin: &Path, fenced: bool) -> Result<Resource, String> {
        Resource::start_on(bin, fenced, None).await
    }

    /// [`start`](Self::start), listening on `ip` instead of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When it does not start or say where it listens within 10 s.
    pub async fn start_on(
        bin: &Path,
        fenced: bool,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Resource, String> {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg(if fenced { "fenced" } else { "unfenced" });
        if let Some(ip) = ip {
            cmd.arg(ip.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .map_err(|_| "the resource did not start within 10 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or("the resource exited")?;
        let addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line {line:?}"))?;
        Ok(Resource { child, addr })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters now.
    ///
    /// # Errors
    ///
    /// When the resource cannot be asked.
    pub async fn stats(&self) -> Result<Stats, String> {
        let ask = async {
            let mut c = Conn::connect(self.addr).await?;
            c.stats().await
        };
        tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .map_err(|_| "the resource did not answer".to_string())?
            .map_err(|e| e.to_string())
    }
}

impl Drop for Resource {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_rejects_stale_reads_and_writes() {
        let s = Mutex::new(State::default());
        assert_eq!(answer(&s, true, "R 5"), "OK 0\n");
        assert_eq!(answer(&s, true, "W 5 1"), "OK\n");
        assert_eq!(answer(&s, true, "R 4"), "STALE 5\n");
        assert_eq!(answer(&s, true, "W 4 9"), "STALE 5\n");
        assert_eq!(answer(&s, true, "S"), "STATS 1 1 1 1 0\n");
        let u = Mutex::new(State::default());
        assert_eq!(answer(&u, false, "W 5 1"), "OK\n");
        assert_eq!(answer(&u, false, "W 4 1"), "OK\n");
        assert_eq!(answer(&u, false, "S"), "STATS 1 2 0 0 1\n");
    }
}
