//! Network namespaces for partitions and packet loss (S12, S13): one
//! namespace per client process, each joined to the root namespace by a
//! veth pair; iptables rules inside a client's namespace cut it from the
//! servers or drop a share of its packets. The servers and the resource
//! stay in the root namespace, listening on two extra addresses of the
//! first veth's root end as well as 127.0.0.1.
//!
//! Needs root, `ip` (iproute2) and `iptables`. Names carry this process's
//! PID and a letter per set (`fl<pid><k>c<i>` namespaces, `flh<pid><k>x<i>`
//! / `fln<pid><k>x<i>` veths)
//! and the addresses are a /24 of 198.18.0.0/15 (RFC 2544, benchmarking)
//! that no interface uses yet, so parallel runs never collide. Everything
//! is removed on drop, and by a watcher process when this process dies
//! without dropping (Ctrl-C, SIGKILL, a panic that aborts); leftovers of
//! runs whose process is gone are swept when the next one starts.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};

/// What the partition rules cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Every packet between the namespace and the servers' address.
    Cut,
    /// A random share (0–1) of those packets, in each direction.
    Loss(f64),
}

/// Client namespaces with their veths, removed on drop.
#[derive(Debug)]
pub struct Net {
    pid: u32,
    tag: char,
    groups: usize,
    subnet: (u8, u8),
    watcher: Option<std::process::Child>,
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run {} ({e}): S12/S13 need iproute2 and iptables (scripts/chaos installs them as root)",
                args[0]
            )
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether process `pid` runs (a zombie does not: its parent may never
/// reap it).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim_start().starts_with('Z'))
    })
}

/// The PID in one of our names (`fl<pid><k>c<i>`, `flh<pid><k>x<i>`), if
/// it is one.
fn owner(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("flh")
        .or_else(|| name.strip_prefix("fln"))
        .or_else(|| name.strip_prefix("fl"))?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Sets of namespaces made by this process so far (the letter in names).
static MADE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Removes the namespaces and veths of runs whose process is gone.
fn sweep() {
    if let Ok(list) = run(&["ip", "netns", "list"]) {
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if owner(name).is_some_and(|p| !alive(p)) && name.contains('c') {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }
    if let Ok(list) = run(&["ip", "-o", "link", "show"]) {
        for l in list.lines() {
            let Some(name) = l.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if name.starts_with("flh") && owner(name).is_some_and(|p| !alive(p)) {
                let _ = run(&["ip", "link", "del", name]);
            }
        }
    }
}

impl Net {
    /// Creates `groups` client namespaces (at most 60), each with a veth to
    /// the root namespace and a default route through it.
    ///
    /// # Errors
    ///
    /// When not root, when `ip` or `iptables` is missing, or when a step
    /// fails: a clear message, never a skip.
    pub fn create(groups: usize) -> Result<Net, String> {
        if !(1..=60).contains(&groups) {
            return Err(format!("{groups} namespaces asked for; 1 to 60 allowed"));
        }
        let uid = run(&["id", "-u"])?;
        if uid.trim() != "0" {
            return Err(format!(
                "network namespaces need root (uid is {}): run S12/S13 as root",
                uid.trim()
            ));
        }
        run(&["iptables", "--version"])?;
        sweep();
        let used = run(&["ip", "-4", "-o", "addr", "show"])?;
        let subnet = (0..1000)
            .map(|_| {
                let r = rand::random::<u16>() % 512;
                (18 + u8::from(r >= 256), u8::try_from(r % 256).unwrap_or(0))
            })
            .find(|(a, b)| !used.contains(&format!("198.{a}.{b}.")))
            .ok_or("no free /24 in 198.18.0.0/15")?;
        let mut net = Net {
            pid: std::process::id(),
            tag: char::from(b'a' + MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 26),
            groups: 0,
            subnet,
            watcher: None,
        };
        net.arm_watcher(groups);
        for i in 0..groups {
            net.groups = i + 1;
            net.add(i)?;
        }
        // The servers' and the resource's addresses, on the first veth's
        // root end: local addresses of the root namespace, reachable from
        // every client namespace through its own veth.
        let host = net.host_link(0);
        for ip in [net.server_ip(), net.resource_ip()] {
            run(&["ip", "addr", "add", &format!("{ip}/32"), "dev", &host])?;
        }
        Ok(net)
    }

    fn ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, self.subnet.0, self.subnet.1, last)
    }

    fn host_link(&self, i: usize) -> String {
        format!("flh{}{}x{i}", self.pid, self.tag)
    }

    fn ns_link(&self, i: usize) -> String {
        format!("fln{}{}x{i}", self.pid, self.tag)
    }

    /// The name of client namespace `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("fl{}{}c{i}", self.pid, self.tag)
    }

    /// How many client namespaces there are.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// The address the servers listen on (besides 127.0.0.1).
    pub fn server_ip(&self) -> IpAddr {
        IpAddr::V4(self.ip(250))
    }

    /// The address the resource listens on (never cut).
    pub fn resource_ip(&self) -> IpAddr {
        IpAddr::V4(self.ip(251))
    }

    /// The command prefix that runs a program in namespace `i` (`ip netns
    /// exec` execs it: the PID is the program's).
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(i)]
    }

    fn add(&self, i: usize) -> Result<(), String> {
        let (ns, host, peer) = (self.ns(i), self.host_link(i), self.ns_link(i));
        let base = u8::try_from(4 * i).map_err(|e| e.to_string())?;
        let (h, c) = (self.ip(base + 1), self.ip(base + 2));
        run(&["ip", "netns", "add", &ns])?;
        run(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
        ])?;
        run(&["ip", "link", "set", &peer, "netns", &ns])?;
        run(&["ip", "addr", "add", &format!("{h}/30"), "dev", &host])?;
        run(&["ip", "link", "set", &host, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            run(&all)
        };
        inside(&["ip", "addr", "add", &format!("{c}/30"), "dev", &peer])?;
        inside(&["ip", "link", "set", &peer, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        inside(&["ip", "route", "add", "default", "via", &h.to_string()])?;
        // Let the namespace's iptables work now, so a missing module shows
        // here rather than mid-run.
        inside(&["iptables", "-w", "-S"])?;
        Ok(())
    }

    /// A shell process, in its own process group (Ctrl-C does not reach
    /// it), that removes everything once this process is gone.
    fn arm_watcher(&mut self, groups: usize) {
        // Gone, or a zombie (whose parent may never reap it).
        let mut script = format!(
            "while grep -q '^State:[[:space:]]*[^Z]' /proc/{}/status 2>/dev/null; do sleep 1; done;",
            self.pid
        );
        for i in 0..groups {
            script.push_str(&format!(
                " ip netns del {} 2>/dev/null; ip link del {} 2>/dev/null;",
                self.ns(i),
                self.host_link(i)
            ));
        }
        use std::os::unix::process::CommandExt;
        self.watcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok();
    }

    fn iptables(&self, i: usize, args: &[&str]) -> Result<(), String> {
        let ns = self.ns(i);
        let mut all = vec!["ip", "netns", "exec", &ns, "iptables", "-w"];
        all.extend_from_slice(args);
        run(&all).map(|_| ())
    }

    /// Applies `rule` to namespace `i`'s traffic with the servers (both
    /// directions; the resource is never touched). Rules add up until
    /// [`heal`](Self::heal).
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn apply(&self, i: usize, rule: Rule) -> Result<(), String> {
        let s = self.server_ip().to_string();
        let p = match rule {
            Rule::Cut => None,
            Rule::Loss(p) => Some(format!("{p}")),
        };
        for (chain, dir) in [("OUTPUT", "-d"), ("INPUT", "-s")] {
            let mut args = vec!["-A", chain, dir, &s];
            if let Some(p) = &p {
                args.extend_from_slice(&[
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    p,
                ]);
            }
            args.extend_from_slice(&["-j", "DROP"]);
            self.iptables(i, &args)?;
        }
        Ok(())
    }

    /// Removes every rule of namespace `i`.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn heal(&self, i: usize) -> Result<(), String> {
        self.iptables(i, &["-F", "OUTPUT"])?;
        self.iptables(i, &["-F", "INPUT"])
    }

    /// The rules of namespace `i`, as `iptables -S` prints them.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn rules(&self, i: usize) -> Result<String, String> {
        let ns = self.ns(i);
        run(&["ip", "netns", "exec", &ns, "iptables", "-w", "-S"])
    }

    /// Packets the rules of namespace `i` dropped so far.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn dropped(&self, i: usize) -> Result<u64, String> {
        let ns = self.ns(i);
        let out = run(&[
            "ip", "netns", "exec", &ns, "iptables", "-w", "-L", "-v", "-x", "-n",
        ])?;
        Ok(out
            .lines()
            .filter(|l| l.contains("DROP"))
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum())
    }

    fn remove(&mut self) {
        for i in 0..self.groups.max(1) {
            let _ = run(&["ip", "netns", "del", &self.ns(i)]);
            let _ = run(&["ip", "link", "del", &self.host_link(i)]);
        }
        if let Some(mut w) = self.watcher.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn names_carry_the_pid() {
        assert_eq!(owner("fl123ac0"), Some(123));
        assert_eq!(owner("flh4567bx12"), Some(4567));
        assert_eq!(owner("fln4567zx1"), Some(4567));
        assert_eq!(owner("flannel"), None);
        assert_eq!(owner("eth0"), None);
    }
}
