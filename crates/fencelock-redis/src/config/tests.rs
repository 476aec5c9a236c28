//! The URL forms and settings of the builder.

use std::path::PathBuf;

use super::*;
use fencelock_core::ErrorKind;

fn err(url: &str) -> String {
    let e = RedisLockBuilder::from_url(url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
    e.to_string()
}

#[test]
fn urls_parse_into_targets() {
    let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379/0").unwrap();
    assert_eq!(b.target, Target::Single("redis://127.0.0.1:6379/0".into()));
    let b = RedisLockBuilder::from_url(
        "redis+cluster://u:p@127.0.0.1:7000,127.0.0.1:7001?prefix=app&timeout=250ms",
    )
    .unwrap();
    assert_eq!(
        b.target,
        Target::Cluster(vec![
            "redis://u:p@127.0.0.1:7000".into(),
            "redis://u:p@127.0.0.1:7001".into()
        ])
    );
    assert_eq!(b.prefix, "app");
    assert_eq!(b.response_timeout, Duration::from_millis(250));
    let b = RedisLockBuilder::from_url("rediss://h:1")
        .unwrap()
        .with_cluster(true);
    assert!(b.is_cluster());
}

#[test]
fn bad_urls_are_config_errors() {
    for url in [
        "127.0.0.1:6379",
        "http://127.0.0.1",
        "redis://a:1,b:2",
        "redis+cluster://a:1,,b:2",
        "redis://h:1?connect_timeout_ms=soon",
        "redis://h:1?connect_timeout=soon",
        "redis://h:notaport",
        "redis://h:1?protocol=resp9",
    ] {
        let e = RedisLockBuilder::from_url(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
    }
    assert!(RedisLockBuilder::from_cluster_nodes(Vec::<String>::new()).is_err());
    assert!(RedisLockBuilder::from_url("redis://h:1?prefix=a{b")
        .unwrap()
        .validate()
        .is_err());
}

#[test]
fn sentinel_urls_parse() {
    let b = RedisLockBuilder::from_url(
        "redis+sentinel://u:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2?wait_replicas=1&wait_timeout=250ms",
    )
    .unwrap();
    let Target::Sentinel(spec) = &b.target else {
        panic!("not a sentinel target: {b:?}");
    };
    assert_eq!(
        spec.sentinels,
        vec!["redis://127.0.0.1:26379", "redis://127.0.0.1:26380"]
    );
    assert_eq!(spec.master, "mymaster");
    assert_eq!(
        spec.node_url("10.0.0.9", 6380),
        "redis://u:pw@10.0.0.9:6380/2"
    );
    assert_eq!(
        b.wait_replicas,
        Some(WaitReplicas {
            replicas: 1,
            timeout: Duration::from_millis(250)
        })
    );
    assert!(!format!("{b:?}").contains("pw@"));
    for bad in [
        "redis+sentinel://h:1",
        "redis+sentinel://h:1/",
        "redis+sentinel://h:1/m/x",
        "redis+sentinel://h:1/m?wait_replicas=x",
    ] {
        let e = RedisLockBuilder::from_url(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
    let b = RedisLockBuilder::from_sentinels(["h:1", "h:2"], "m").unwrap();
    assert!(b.is_sentinel());
    assert!(
        RedisLockBuilder::from_url("redis+cluster://h:1?wait_replicas=1")
            .unwrap()
            .validate()
            .is_err()
    );
}

#[test]
fn tls_ca_and_fragment_parse() {
    let b = RedisLockBuilder::from_url(
        "rediss://u:p@127.0.0.1:6380/2?ca_file=/etc/my%20ca.pem&prefix=app&protocol=resp3#insecure",
    )
    .unwrap();
    assert_eq!(
        b.target,
        Target::Single("rediss://u:p@127.0.0.1:6380/2?protocol=resp3#insecure".into())
    );
    assert_eq!(
        b.tls_ca,
        Some(CaSource::File(PathBuf::from("/etc/my ca.pem")))
    );
    assert_eq!(b.prefix, "app");
    let b = RedisLockBuilder::from_url("rediss+cluster://h:1,h:2?ca_file=/ca.pem").unwrap();
    assert_eq!(b.tls_ca, Some(CaSource::File(PathBuf::from("/ca.pem"))));
    assert!(b.uses_tls());
    let b = RedisLockBuilder::from_url("rediss+sentinel://h:1/m?ca_file=/ca.pem").unwrap();
    assert!(b.tls_ca.is_some() && b.uses_tls());
    for bad in [
        "redis://h:1?ca_file=/ca.pem",
        "redis+cluster://h:1?ca_file=/ca.pem",
        "rediss://h:1?ca_file=",
        "rediss://h:1?ca_file=%zz",
    ] {
        let e = RedisLockBuilder::from_url(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{bad}");
    }
    let b = RedisLockBuilder::from_url("redis://h:1")
        .unwrap()
        .with_tls_ca_pem(b"x".to_vec());
    assert_eq!(b.validate().unwrap_err().kind(), ErrorKind::InvalidConfig);
    assert!(format!("{b:?}").contains("Pem(<1 bytes>)"));
}

#[test]
fn handoff_window_parses_and_is_bounded() {
    let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379?handoff_window=0").unwrap();
    assert_eq!(b.handoff_window, Duration::ZERO);
    assert!(b.validate().is_ok());
    let b = RedisLockBuilder::from_url("redis+sentinel://127.0.0.1:26379/m?handoff_window=50ms")
        .unwrap();
    assert_eq!(b.handoff_window, Duration::from_millis(50));
    let b = RedisLockBuilder::from_url("redis://127.0.0.1:6379").unwrap();
    assert_eq!(b.handoff_window, DEFAULT_HANDOFF_WINDOW);
    let e = b
        .with_handoff_window(Duration::from_secs(61))
        .validate()
        .unwrap_err();
    assert_eq!(e.kind(), fencelock_core::ErrorKind::InvalidConfig);
    err("redis://127.0.0.1:6379?handoff_window=soon");
}

#[test]
fn debug_hides_passwords() {
    let b = RedisLockBuilder::from_url("redis://user:s3cret@h:1/0").unwrap();
    let s = format!("{b:?}");
    assert!(!s.contains("s3cret"), "{s}");
    assert!(s.contains("user:***@h:1/0"), "{s}");
    let b = RedisLockBuilder::from_url("redis+cluster://:s3cret@h:1,h:2").unwrap();
    assert!(!format!("{b:?}").contains("s3cret"));
    assert_eq!(redact("redis://h:1"), "redis://h:1");
    let msg = err("redis://user:s3cret@h:1?prefx=x");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[test]
fn a_typo_is_rejected_with_the_known_options() {
    for url in [
        "redis://h:1?prefx=x",
        "rediss://h:1?prefx=x",
        "redis+cluster://h:1,h:2?prefx=x",
        "rediss+cluster://h:1,h:2?prefx=x",
        "redis+sentinel://h:1/m?prefx=x",
        "rediss+sentinel://h:1/m?prefx=x",
    ] {
        let msg = err(url);
        assert!(msg.contains("unknown option \"prefx\""), "{msg}");
        assert!(
            msg.contains(
                "known options: ca_file, connect_timeout, handoff_window, prefix, protocol, \
                 timeout, wait_replicas, wait_timeout"
            ),
            "{msg}"
        );
    }
    // Options redis-rs reads for other connection kinds are not handed on.
    err("redis://h:1?db=2");
    err("redis://h:1?response_timeout=1s");
}

#[test]
fn old_spellings_still_read() {
    let b = RedisLockBuilder::from_url(
        "redis://h:1?connect_timeout_ms=250&response_timeout_ms=750&handoff_window_ms=20\
         &wait_replicas=1&wait_timeout_ms=300",
    )
    .unwrap();
    assert_eq!(b.connect_timeout, Duration::from_millis(250));
    assert_eq!(b.response_timeout, Duration::from_millis(750));
    assert_eq!(b.handoff_window, Duration::from_millis(20));
    assert_eq!(
        b.wait_replicas,
        Some(WaitReplicas {
            replicas: 1,
            timeout: Duration::from_millis(300)
        })
    );
    let new = RedisLockBuilder::from_url(
        "redis://h:1?connect_timeout=250ms&timeout=750ms&handoff_window=20ms\
         &wait_replicas=1&wait_timeout=0.3s",
    )
    .unwrap();
    assert_eq!(format!("{b:?}"), format!("{new:?}"));
    // An old spelling takes plain milliseconds only.
    err("redis://h:1?connect_timeout_ms=250ms");
}

#[test]
fn both_spellings_are_an_error() {
    for url in [
        "redis://h:1?connect_timeout=1s&connect_timeout_ms=1000",
        "redis://h:1?timeout=1s&response_timeout_ms=1000",
        "redis://h:1?handoff_window=1s&handoff_window_ms=1000",
        "redis://h:1?wait_replicas=1&wait_timeout=1s&wait_timeout_ms=1000",
        "redis+cluster://h:1,h:2?timeout=1s&response_timeout_ms=1000",
        "redis+sentinel://h:1/m?timeout=1s&response_timeout_ms=1000",
    ] {
        let msg = err(url);
        assert!(msg.contains("old spelling"), "{msg}");
    }
    // Twice under one name, too.
    err("redis://h:1?prefix=a&prefix=b");
}

#[test]
fn every_scheme_reads_the_vocabulary() {
    for (url, tls) in [
        ("redis://h:1", false),
        ("rediss://h:1", true),
        ("redis+cluster://h:1,h:2", false),
        ("rediss+cluster://h:1,h:2", true),
        ("redis+sentinel://h:1,h:2/m", false),
        ("rediss+sentinel://h:1,h:2/m", true),
    ] {
        let ca = if tls { "&ca_file=/ca.pem" } else { "" };
        let b = RedisLockBuilder::from_url(&format!(
            "{url}?prefix=app&connect_timeout=1.5s&timeout=400ms&handoff_window=0{ca}"
        ))
        .unwrap();
        assert_eq!(b.prefix, "app", "{url}");
        assert_eq!(b.connect_timeout, Duration::from_millis(1500), "{url}");
        assert_eq!(b.response_timeout, Duration::from_millis(400), "{url}");
        assert_eq!(b.handoff_window, Duration::ZERO, "{url}");
        assert_eq!(b.tls_ca.is_some(), tls, "{url}");
        assert_eq!(b.uses_tls(), tls, "{url}");
        if !tls {
            let msg = err(&format!("{url}?ca_file=/ca.pem"));
            assert!(msg.contains("needs TLS"), "{msg}");
        }
    }
    // wait_timeout alone would mean nothing.
    err("redis://h:1?wait_timeout=1s");
}

#[test]
fn user_info_and_options_reach_every_node() {
    let b = RedisLockBuilder::from_url(
        "redis+cluster://us%40er:p%3As%2Fs@h:1,[::1]:2/3?protocol=resp3&prefix=x",
    )
    .unwrap();
    assert_eq!(
        b.target,
        Target::Cluster(vec![
            "redis://us%40er:p%3As%2Fs@h:1/3?protocol=resp3".into(),
            "redis://us%40er:p%3As%2Fs@[::1]:2/3?protocol=resp3".into()
        ])
    );
    let b = RedisLockBuilder::from_url("redis://:pw@h:1").unwrap();
    assert_eq!(b.target, Target::Single("redis://:pw@h:1".into()));
    let b = RedisLockBuilder::from_url("redis+sentinel://u:pw@h:1/m?protocol=2").unwrap();
    let Target::Sentinel(spec) = &b.target else {
        panic!("{b:?}");
    };
    assert_eq!(spec.sentinels, ["redis://h:1"]);
    assert_eq!(spec.node_url("::1", 7), "redis://u:pw@[::1]:7?protocol=2");
    let b = RedisLockBuilder::from_sentinels(["h:1"], "my master").unwrap_err();
    assert_eq!(b.kind(), ErrorKind::InvalidConfig);
}
