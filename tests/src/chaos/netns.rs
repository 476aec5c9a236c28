//! Network namespaces for partitions and packet loss (S12, S13): one
//! namespace per client process, each joined to the root namespace by a
//! veth pair; iptables rules inside a client's namespace cut it from the
//! servers or drop a share of its packets. The servers and the resource
//! stay in the root namespace, listening on two extra addresses of the
//! first veth's root end as well as 127.0.0.1. For partitions between
//! server members (S12-member), [`Members`] puts each member of a cluster
//! in a namespace of its own instead, on a bridge.
//!
//! Needs root, `ip` (iproute2) and `iptables`. Names carry this process's
//! PID and a letter per set (`fl<pid><k>c<i>` namespaces, `flh<pid><k>x<i>`
//! / `fln<pid><k>x<i>` veths; `fl<pid><k>m<i>`, `flh<pid><k>m<i>` and the
//! bridge `flb<pid><k>` for members)
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

/// The PID in one of our names (`fl<pid><k>c<i>`, `flh<pid><k>x<i>`,
/// `fl<pid><k>m<i>`, `flb<pid><k>`), if it is one.
fn owner(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix("flh")
        .or_else(|| name.strip_prefix("fln"))
        .or_else(|| name.strip_prefix("flb"))
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
            if owner(name).is_some_and(|p| !alive(p)) && (name.contains('c') || name.contains('m'))
            {
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
            if (name.starts_with("flh") || name.starts_with("flb"))
                && owner(name).is_some_and(|p| !alive(p))
            {
                let _ = run(&["ip", "link", "del", name]);
            }
        }
    }
}

/// Checks root and the tools, sweeps dead runs' leftovers, and picks a /24
/// of 198.18.0.0/15 that no interface uses.
fn prepare() -> Result<(u8, u8), String> {
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
    (0..1000)
        .map(|_| {
            let r = rand::random::<u16>() % 512;
            (18 + u8::from(r >= 256), u8::try_from(r % 256).unwrap_or(0))
        })
        .find(|(a, b)| !used.contains(&format!("198.{a}.{b}.")))
        .ok_or_else(|| "no free /24 in 198.18.0.0/15".to_string())
}

/// The letter of a new set of namespaces.
fn next_tag() -> char {
    char::from(b'a' + MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 26)
}

/// Runs iptables in namespace `ns`.
fn ns_iptables(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["ip", "netns", "exec", ns, "iptables", "-w"];
    all.extend_from_slice(args);
    run(&all)
}

/// Packets dropped so far by the DROP rules of namespace `ns`.
fn ns_dropped(ns: &str) -> Result<u64, String> {
    let out = ns_iptables(ns, &["-L", "-v", "-x", "-n"])?;
    Ok(out
        .lines()
        .filter(|l| l.contains("DROP"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum())
}

/// A shell process, in its own process group (Ctrl-C does not reach it),
/// that runs `cleanup` once process `pid` is gone (or a zombie, whose
/// parent may never reap it).
fn watcher(pid: u32, cleanup: &str) -> Option<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let script = format!(
        "while grep -q '^State:[[:space:]]*[^Z]' /proc/{pid}/status 2>/dev/null; do sleep 1; done; {cleanup}"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
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
        let subnet = prepare()?;
        let mut net = Net {
            pid: std::process::id(),
            tag: next_tag(),
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

/// Server members in network namespaces of their own (S12-member): member
/// `i` runs in `fl<pid><k>m<i>`, whose veth (`fln<pid><k>m<i>`, address
/// `198.a.b.(10 + i)/24`) is joined to a bridge `flb<pid><k>` of the root
/// namespace (address `198.a.b.1`; a bridge, because the root namespace
/// does not forward). The members talk to each other over the bridge and
/// the clients, in the root namespace, reach them through it; iptables
/// rules in member `i`'s namespace cut it from the other members while its
/// client port stays open. Removed on drop and by a watcher process, like
/// [`Net`].
#[derive(Debug)]
pub struct Members {
    pid: u32,
    tag: char,
    count: usize,
    subnet: (u8, u8),
    watcher: Option<std::process::Child>,
}

impl Members {
    /// Creates `count` member namespaces (1 to 9) and the bridge.
    ///
    /// # Errors
    ///
    /// When not root, when `ip` or `iptables` is missing, or when a step
    /// fails: a clear message, never a skip.
    pub fn create(count: usize) -> Result<Members, String> {
        if !(1..=9).contains(&count) {
            return Err(format!("{count} members asked for; 1 to 9 allowed"));
        }
        let subnet = prepare()?;
        let mut m = Members {
            pid: std::process::id(),
            tag: next_tag(),
            count,
            subnet,
            watcher: None,
        };
        let mut cleanup = String::new();
        for i in 0..count {
            cleanup.push_str(&format!(
                " ip netns del {} 2>/dev/null; ip link del {} 2>/dev/null;",
                m.ns(i),
                m.host_link(i)
            ));
        }
        cleanup.push_str(&format!(" ip link del {} 2>/dev/null;", m.bridge()));
        m.watcher = watcher(m.pid, &cleanup);
        let bridge = m.bridge();
        run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", m.addr(1)),
            "dev",
            &bridge,
        ])?;
        run(&["ip", "link", "set", &bridge, "up"])?;
        for i in 0..count {
            m.add(i)?;
        }
        Ok(m)
    }

    fn addr(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, self.subnet.0, self.subnet.1, last)
    }

    fn bridge(&self) -> String {
        format!("flb{}{}", self.pid, self.tag)
    }

    fn host_link(&self, i: usize) -> String {
        format!("flh{}{}m{i}", self.pid, self.tag)
    }

    fn ns_link(&self, i: usize) -> String {
        format!("fln{}{}m{i}", self.pid, self.tag)
    }

    /// The name of member `i`'s namespace.
    pub fn ns(&self, i: usize) -> String {
        format!("fl{}{}m{i}", self.pid, self.tag)
    }

    /// How many members there are.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Member `i`'s address.
    pub fn ip(&self, i: usize) -> IpAddr {
        IpAddr::V4(self.addr(10 + u8::try_from(i).unwrap_or(0)))
    }

    /// Where each member runs, for [`Fixture::start_placed`](crate::fixture::Fixture::start_placed).
    pub fn placements(&self) -> Vec<crate::fixture::Placement> {
        (0..self.count)
            .map(|i| crate::fixture::Placement {
                prefix: vec!["ip".into(), "netns".into(), "exec".into(), self.ns(i)],
                ip: self.ip(i),
            })
            .collect()
    }

    fn add(&self, i: usize) -> Result<(), String> {
        let (ns, host, peer) = (self.ns(i), self.host_link(i), self.ns_link(i));
        run(&["ip", "netns", "add", &ns])?;
        run(&[
            "ip", "link", "add", &host, "type", "veth", "peer", "name", &peer,
        ])?;
        run(&["ip", "link", "set", &host, "master", &self.bridge()])?;
        run(&["ip", "link", "set", &host, "up"])?;
        run(&["ip", "link", "set", &peer, "netns", &ns])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            run(&all)
        };
        let ip = format!("{}/24", self.ip(i));
        inside(&["ip", "addr", "add", &ip, "dev", &peer])?;
        inside(&["ip", "link", "set", &peer, "up"])?;
        inside(&["ip", "link", "set", "lo", "up"])?;
        inside(&["iptables", "-w", "-S"])?;
        Ok(())
    }

    /// Cuts member `i` from every other member: iptables in its namespace
    /// drops every packet to and from their addresses (both directions).
    /// With `clients`, its clients (the root namespace's bridge address)
    /// are cut too; without, its client port stays reachable.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn isolate(&self, i: usize, clients: bool) -> Result<(), String> {
        let ns = self.ns(i);
        let mut others: Vec<String> = (0..self.count)
            .filter(|j| *j != i)
            .map(|j| self.ip(j).to_string())
            .collect();
        if clients {
            others.push(self.addr(1).to_string());
        }
        for ip in &others {
            ns_iptables(&ns, &["-A", "INPUT", "-s", ip.as_str(), "-j", "DROP"])?;
            ns_iptables(&ns, &["-A", "OUTPUT", "-d", ip.as_str(), "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Removes every rule of member `i`'s namespace.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn heal(&self, i: usize) -> Result<(), String> {
        let ns = self.ns(i);
        ns_iptables(&ns, &["-F", "INPUT"])?;
        ns_iptables(&ns, &["-F", "OUTPUT"]).map(|_| ())
    }

    /// The rules of member `i`'s namespace, as `iptables -S` prints them.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn rules(&self, i: usize) -> Result<String, String> {
        ns_iptables(&self.ns(i), &["-S"])
    }

    /// Packets the rules of member `i`'s namespace dropped so far.
    ///
    /// # Errors
    ///
    /// When iptables fails.
    pub fn dropped(&self, i: usize) -> Result<u64, String> {
        ns_dropped(&self.ns(i))
    }
}

impl Drop for Members {
    fn drop(&mut self) {
        for i in 0..self.count {
            let _ = run(&["ip", "netns", "del", &self.ns(i)]);
            let _ = run(&["ip", "link", "del", &self.host_link(i)]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge()]);
        if let Some(mut w) = self.watcher.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
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
        assert_eq!(owner("fl4567bm2"), Some(4567));
        assert_eq!(owner("flb4567b"), Some(4567));
        assert_eq!(owner("flannel"), None);
        assert_eq!(owner("eth0"), None);
    }
}
