//! The real ZooKeeper these tests run against: a standalone server started
//! per test on a free port, in a temp dir, killed by PID at the end. A
//! missing server or Java is a failure, not a skip.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::{sleep, Instant};
use zookeeper_client as zk;

const JARS: [&str; 3] = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
];

pub struct Zk {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Zk {
    pub fn start() -> Option<Zk> {
        if JARS.iter().any(|j| !std::path::Path::new(j).exists())
            || Command::new("java").arg("-version").output().is_err()
        {
            panic!("ZooKeeper or Java not installed: install the Debian package zookeeper (scripts/test does it); a missing server is a failure, not a skip");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path();
        std::fs::create_dir_all(d.join("data")).expect("data dir");
        let cfg = format!(
            "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat,mntr,conf\nmaxSessionTimeout=60000\n\
             forceSync=no\n",
            d.join("data").display()
        );
        std::fs::write(d.join("zoo.cfg"), cfg).expect("zoo.cfg");
        let log4j = std::fs::read_to_string("/etc/zookeeper/conf_example/log4j.properties").unwrap_or_else(|_| {
            "log4j.rootLogger=${zookeeper.root.logger}\nlog4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                .to_string()
        });
        std::fs::write(d.join("log4j.properties"), log4j).expect("log4j.properties");
        let log = std::fs::File::create(d.join("zk.log")).expect("zk.log");
        let child = Command::new("java")
            .args([
                "-Xms32m",
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
            ])
            .arg("-Dznode.container.checkIntervalMs=200")
            .arg(format!(
                "-Dlog4j.configuration=file:{}",
                d.join("log4j.properties").display()
            ))
            .args(["-cp", &JARS.join(":")])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(d.join("zoo.cfg"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start java");
        let zk = Zk {
            child,
            port,
            _dir: dir,
        };
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if zk.four_letter("srvr").is_some_and(|s| s.contains("Mode:")) {
                return Some(zk);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ZooKeeper did not become ready on port {port}");
    }

    /// A bounded four-letter-word probe.
    pub fn four_letter(&self, cmd: &str) -> Option<String> {
        let addr = format!("127.0.0.1:{}", self.port).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
        s.write_all(cmd.as_bytes()).ok()?;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        Some(out)
    }

    pub fn url(&self, query: &str) -> String {
        format!("zk://127.0.0.1:{}{query}", self.port)
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status();
    }

    pub async fn raw(&self) -> zk::Client {
        zk::Client::connect(&format!("127.0.0.1:{}", self.port))
            .await
            .expect("raw client")
    }
}

impl Drop for Zk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub async fn children(raw: &zk::Client, path: &str) -> Vec<String> {
    match raw.list_children(path).await {
        Ok(mut c) => {
            c.sort();
            c
        }
        Err(zk::Error::NoNode) => Vec::new(),
        Err(e) => panic!("list {path}: {e}"),
    }
}

/// Polls (bounded) until `f` holds.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + within;
    while Instant::now() < until {
        if f().await {
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {within:?}");
}
