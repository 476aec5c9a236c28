//! A running peer and the lines it prints.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};
use tokio::time::{timeout_at, Instant};

/// One line of a peer (times in microseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The process whose death ends the peer's session or lease.
    Pid(u32),
    /// Connected to the store.
    Connected(u64),
    /// Granted, with the grant's token (czxid / create revision).
    Acquired {
        /// When.
        at: u64,
        /// The token.
        token: u64,
    },
    /// Not granted within the wait bound.
    Busy(u64),
    /// About to release.
    Releasing(u64),
    /// Released (the release call returned).
    Released(u64),
    /// Found the in-section marker there on entering: two inside at once.
    Overlap(u64),
    /// A loop ended after this many grants.
    Done(u32),
}

impl Event {
    /// Parses one line; `None` for anything else (logging).
    pub fn parse(line: &str) -> Option<Event> {
        let mut words = line.split_whitespace();
        let what = words.next()?;
        let mut num = || words.next().and_then(|w| w.parse::<u64>().ok());
        Some(match what {
            "pid" => Event::Pid(u32::try_from(num()?).ok()?),
            "connected" => Event::Connected(num()?),
            "acquired" => Event::Acquired {
                at: num()?,
                token: num()?,
            },
            "busy" => Event::Busy(num()?),
            "releasing" => Event::Releasing(num()?),
            "released" => Event::Released(num()?),
            "overlap" => Event::Overlap(num()?),
            "done" => Event::Done(u32::try_from(num()?).ok()?),
            _ => return None,
        })
    }
}

/// A peer process; killed (its process group) when dropped.
pub struct PeerProcess {
    name: String,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<Event>,
    holder: Option<u32>,
}

impl std::fmt::Debug for PeerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerProcess")
            .field("name", &self.name)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl PeerProcess {
    pub(crate) fn new(name: String, mut child: Child) -> Result<Self, String> {
        let out = child
            .stdout
            .take()
            .ok_or_else(|| format!("{name}: no stdout"))?;
        Ok(PeerProcess {
            name,
            child,
            lines: BufReader::new(out).lines(),
            seen: Vec::new(),
            holder: None,
        })
    }

    /// The next event before `until`; `None` at the end of its output.
    async fn read(&mut self, until: Instant) -> Result<Option<Event>, String> {
        loop {
            let line = timeout_at(until, self.lines.next_line())
                .await
                .map_err(|_| format!("{}: nothing in time (seen {:?})", self.name, self.seen))?
                .map_err(|e| format!("{}: reading its output: {e}", self.name))?;
            let Some(line) = line else {
                return Ok(None);
            };
            if let Some(e) = Event::parse(&line) {
                if let Event::Pid(p) = e {
                    self.holder.get_or_insert(p);
                }
                self.seen.push(e);
                return Ok(Some(e));
            }
        }
    }

    /// The next event, within `within`.
    ///
    /// # Errors
    ///
    /// When none came in time, or the peer ended first.
    pub async fn next(&mut self, within: Duration) -> Result<Event, String> {
        match self.read(Instant::now() + within).await? {
            Some(e) => Ok(e),
            None => {
                let status = self.child.wait().await.ok();
                Err(format!(
                    "{}: ended (status {status:?}) after {:?}",
                    self.name, self.seen
                ))
            }
        }
    }

    /// Reads events until one `pick` accepts, within `within`.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
    pub async fn until<T>(
        &mut self,
        within: Duration,
        mut pick: impl FnMut(Event) -> Option<T>,
    ) -> Result<T, String> {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if let Some(t) = pick(self.next(left).await?) {
                return Ok(t);
            }
        }
    }

    /// Waits until connected to the store.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
    pub async fn connected(&mut self, within: Duration) -> Result<u64, String> {
        self.until(within, |e| match e {
            Event::Connected(t) => Some(t),
            _ => None,
        })
        .await
    }

    /// Waits for the grant: `(when, token)`; an error when it said busy.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next), and when the peer was not granted.
    pub async fn acquired(&mut self, within: Duration) -> Result<(u64, u64), String> {
        let name = self.name.clone();
        self.until(within, |e| match e {
            Event::Acquired { at, token } => Some(Ok((at, token))),
            Event::Busy(_) => Some(Err(format!("{name}: busy, not granted"))),
            _ => None,
        })
        .await?
    }

    /// Reads every event until the peer exits, within `within`; checks it
    /// exited successfully.
    ///
    /// # Errors
    ///
    /// When it ran longer or failed.
    pub async fn finish(mut self, within: Duration) -> Result<Vec<Event>, String> {
        let until = Instant::now() + within;
        while self.read(until).await?.is_some() {}
        let status = timeout_at(until, self.child.wait())
            .await
            .map_err(|_| format!("{}: did not exit in time", self.name))?
            .map_err(|e| format!("{}: {e}", self.name))?;
        if !status.success() {
            return Err(format!("{}: {status} after {:?}", self.name, self.seen));
        }
        Ok(std::mem::take(&mut self.seen))
    }

    /// Everything seen so far.
    pub fn seen(&self) -> &[Event] {
        &self.seen
    }

    /// SIGKILLs the process that holds the peer's session or lease (its
    /// `pid` line), as a crash would.
    ///
    /// # Errors
    ///
    /// When the peer did not say its pid, or the signal failed.
    pub fn kill_holder(&self) -> Result<(), String> {
        let pid = self
            .holder
            .ok_or_else(|| format!("{}: no pid line seen", self.name))?;
        let pid = i32::try_from(pid).map_err(|e| e.to_string())?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .map_err(|e| format!("{}: kill -9 {pid}: {e}", self.name))
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // Its own process group: etcdctl's command and the JVM go too.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
