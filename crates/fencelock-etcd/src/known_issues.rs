//! etcd server versions with a known bug that bears on locks, and the
//! warning a client logs when it connects to one.

/// Whether an etcd server of `version` (as its Status reply or
/// `etcd --version` gives it, e.g. `3.4.23`) has etcd-io/etcd#15247: a
/// leader that stalls (a slow disk, CPU starvation, SIGSTOP) for longer than
/// a lease's TTL, and resumes after another member was elected and kept the
/// lease alive, still proposes revoking every lease that expired on its own
/// clock, and the new leader applies the revocations. A lock holder's key
/// is then deleted while its guard is valid; the next contender can be
/// granted a few milliseconds before the holder's guard says lost (seen
/// here: 6 ms on etcd 3.4.23). Fencing tokens still order the two holders.
///
/// The fix (etcd-io/etcd#16822: a revoke is proposed only after the member
/// confirms it still leads) was backported to the 3.4 and 3.5 branches in
/// 2024; by the changelogs it first shipped in 3.4.31 and 3.5.13, and 3.6
/// has it. `None` when `version` is not `major.minor.patch`.
pub fn stale_leader_revokes_leases(version: &str) -> Option<bool> {
    let core = version.trim().split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
    Some(match (major, minor) {
        (0..=2, _) => true,
        (3, 0..=3) => true,
        (3, 4) => patch < 31,
        (3, 5) => patch < 13,
        _ => false,
    })
}

/// Logs a warning when a cluster of `version` has a known bug.
pub(crate) fn warn_if_affected(version: &str) {
    if stale_leader_revokes_leases(version) == Some(true) {
        tracing::warn!(
            version = %version,
            "this etcd revokes live leases when a leader stalled past their TTL resumes \
             (etcd-io/etcd#15247, fixed in 3.4.31 and 3.5.13): a lock can then be granted to \
             another client a few ms before its holder's guard says lost; pass the fencing \
             token to the protected resource"
        );
    } else {
        tracing::debug!(version = %version, "etcd server version");
    }
}

#[cfg(test)]
mod tests {
    use super::stale_leader_revokes_leases as affected;

    #[test]
    fn versions() {
        assert_eq!(affected("3.4.23"), Some(true));
        assert_eq!(affected("3.4.30"), Some(true));
        assert_eq!(affected("3.4.31"), Some(false));
        assert_eq!(affected("3.5.12"), Some(true));
        assert_eq!(affected("3.5.13"), Some(false));
        assert_eq!(affected("3.6.0-rc.1"), Some(false));
        assert_eq!(affected("3.3.27"), Some(true));
        assert_eq!(affected(" 3.4.23\n"), Some(true));
        assert_eq!(affected("3.4"), None);
        assert_eq!(affected("banana"), None);
    }
}
