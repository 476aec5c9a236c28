//! The grammar's own cases.

use super::*;
use crate::ErrorKind;
use std::time::Duration;

#[test]
fn splits_the_parts() {
    let u = StoreUrl::parse(
        "Redis://us%3Ar:p%40ss@h1:1,[::1]:2/a%2Fb?prefix=x&timeout=2s#frag",
        "Redis",
        &["redis"],
    )
    .unwrap();
    assert_eq!(u.scheme, "redis");
    assert_eq!(u.user.as_deref(), Some("us:r"));
    assert_eq!(u.password.as_deref(), Some("p@ss"));
    assert_eq!(u.hosts, ["h1:1", "[::1]:2"]);
    assert_eq!(u.path.as_deref(), Some("a/b"));
    assert_eq!(u.fragment.as_deref(), Some("frag"));
    assert_eq!(
        u.redacted(),
        "Redis://us%3Ar:***@h1:1,[::1]:2/a%2Fb?prefix=x&timeout=2s#frag"
    );
    let mut o = u.options;
    assert_eq!(o.string("prefix").as_deref(), Some("x"));
    assert_eq!(o.duration("timeout").unwrap(), Some(Duration::from_secs(2)));
    assert_eq!(o.duration("connect_timeout").unwrap(), None);
    o.finish().unwrap();
}

#[test]
fn unknown_options_name_the_known_ones() {
    let mut o = StoreUrl::parse("redis://h?prefx=x", "Redis", &["redis"])
        .unwrap()
        .options;
    assert_eq!(o.string("prefix"), None);
    let _ = o.duration("timeout");
    let e = o.finish().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    let msg = e.to_string();
    assert!(
        msg.contains("\"prefx\"") && msg.contains("prefix, timeout"),
        "{msg}"
    );
}

#[test]
fn old_spellings_still_read() {
    let mut o = StoreUrl::parse("redis://h?connect_timeout_ms=250", "Redis", &["redis"])
        .unwrap()
        .options;
    let old = o
        .deprecated_millis("connect_timeout_ms", "connect_timeout")
        .unwrap();
    assert_eq!(old, Some(Duration::from_millis(250)));
    assert_eq!(o.duration("connect_timeout").unwrap(), None);
    o.finish().unwrap();
    let mut both = StoreUrl::parse("zk://h?call_timeout=1s&timeout=2s", "ZooKeeper", &["zk"])
        .unwrap()
        .options;
    assert!(both.duration_or("timeout", "call_timeout").is_err());
}

#[test]
fn rejects_bad_urls() {
    for url in [
        "h:1",
        "http://h",
        "redis://",
        "redis://a,,b",
        "redis://u:%zz@h",
        "redis://h?a=%zz",
        "redis://h?a=1&a=2",
    ] {
        let e = StoreUrl::parse(url, "Redis", &["redis"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{url}");
    }
    let e = StoreUrl::parse("redis://u:secret@h", "Redis", &["redis"])
        .unwrap()
        .options;
    assert!(!format!("{e:?}").contains("secret"));
    let mut o = StoreUrl::parse("redis://u:secret@h?x=1", "Redis", &["redis"])
        .unwrap()
        .options;
    let _ = o.string("y");
    assert!(!o.finish().unwrap_err().to_string().contains("secret"));
}

#[test]
fn typed_values_are_checked() {
    let mut o = StoreUrl::parse("redis://h?n=x&d=forever", "Redis", &["redis"])
        .unwrap()
        .options;
    assert!(o.parse::<usize>("n", "a whole number").is_err());
    assert!(o.duration("d").is_err());
}
