//! A small TCP proxy of our own, to cut a client off from its store without
//! touching the store (there is no `tc netem` on these machines).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Hold every byte (connections stay open, nothing arrives): a silent network.
    Blackhole,
    /// Close every connection, and new ones at once: a refused network.
    Reset,
    /// Forward both ways, each chunk held back `base_ms` plus a random
    /// `0..=jitter_ms` before it is written on (order kept): a slow, jittery
    /// network.
    Delay {
        /// The fixed part of the delay, in milliseconds.
        base_ms: u64,
        /// The random part's upper bound, in milliseconds.
        jitter_ms: u64,
    },
    /// Forward client-to-server traffic, hold every server-to-client byte
    /// (delivered, late, once the mode changes to a forwarding one): the
    /// store acts on requests whose replies are held back.
    HoldReplies,
}

impl Mode {
    /// Whether traffic in this direction waits in this mode.
    fn holds(self, upstream: bool) -> bool {
        match self {
            Mode::Blackhole => true,
            Mode::HoldReplies => !upstream,
            Mode::Pass | Mode::Reset | Mode::Delay { .. } => false,
        }
    }
}

/// A proxy in front of one upstream address, on 127.0.0.1 and a port of its own.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding to `upstream`.
    ///
    /// # Errors
    ///
    /// When 127.0.0.1 cannot be bound.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, rx) = watch::channel(Mode::Pass);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rx = rx.clone();
                tokio::spawn(async move {
                    if *rx.borrow() == Mode::Reset {
                        return;
                    }
                    let Ok(Ok(server)) =
                        tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(upstream))
                            .await
                    else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        () = pump(cr, sw, rx.clone(), true) => {}
                        () = pump(sr, cw, rx, false) => {}
                    }
                });
            }
        });
        Ok(Proxy { addr, mode, task })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the mode for existing and new connections.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.set(Mode::Reset);
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    upstream: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Wait while blackholed (or held); leave on reset.
        loop {
            match *mode.borrow_and_update() {
                Mode::Reset => return,
                m if m.holds(upstream) => {}
                _ => break,
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            changed = mode.changed() => { if changed.is_err() { return } continue }
        };
        // A chunk read just as the mode changed is held, not forwarded.
        loop {
            match *mode.borrow_and_update() {
                Mode::Reset => return,
                m if m.holds(upstream) => {}
                _ => break,
            }
            if mode.changed().await.is_err() {
                return;
            }
        }
        let delay = *mode.borrow();
        if let Mode::Delay { base_ms, jitter_ms } = delay {
            let jitter = rand::random::<u64>() % jitter_ms.saturating_add(1);
            tokio::time::sleep(Duration::from_millis(base_ms.saturating_add(jitter))).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// One proxy per endpoint, switched together.
#[derive(Debug)]
pub struct ProxyGroup {
    proxies: Vec<Proxy>,
}

impl ProxyGroup {
    /// A proxy in front of each of `upstreams`.
    ///
    /// # Errors
    ///
    /// When a proxy cannot bind.
    pub async fn start(upstreams: &[SocketAddr]) -> std::io::Result<ProxyGroup> {
        let mut proxies = Vec::new();
        for u in upstreams {
            proxies.push(Proxy::start(*u).await?);
        }
        Ok(ProxyGroup { proxies })
    }

    /// The proxies' addresses, in the upstreams' order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.proxies.iter().map(Proxy::addr).collect()
    }

    /// Switches every proxy.
    pub fn set(&self, mode: Mode) {
        for p in &self.proxies {
            p.set(mode);
        }
    }
}
