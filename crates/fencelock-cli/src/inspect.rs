//! `fencelock status` and `fencelock list`.

use fencelock::LockStatus;
use serde_json::{json, Value};

use crate::report::fail;

fn to_json(s: &LockStatus) -> Value {
    json!({
        "key": s.key,
        "held": s.held,
        "owner": s.owner,
        "token": s.token.map(|t| t.get()),
        "remaining_ms": s.remaining.map(|d| d.as_millis()),
        "waiters": s.waiters,
    })
}

fn human(s: &LockStatus) -> String {
    let mut line = format!("{}: ", s.key);
    if s.held {
        line.push_str("held");
        if let Some(o) = &s.owner {
            line.push_str(&format!(" by {o}"));
        }
        if let Some(t) = s.token {
            line.push_str(&format!(", token {t}"));
        }
        if let Some(r) = s.remaining {
            line.push_str(&format!(", {:.1}s left", r.as_secs_f64()));
        }
    } else {
        line.push_str("free");
        if let Some(t) = s.token {
            line.push_str(&format!(" (last token {t})"));
        }
    }
    if let Some(w) = s.waiters {
        line.push_str(&format!(", {w} waiting"));
    }
    line
}

/// `fencelock status KEY`.
pub async fn status(url: &str, json: bool, key: &str) -> u8 {
    let result = async { fencelock::inspector(url).await?.status(key).await }.await;
    match result {
        Ok(s) if json => {
            println!("{}", to_json(&s));
            0
        }
        Ok(s) => {
            println!("{}", human(&s));
            0
        }
        Err(e) => fail(&e, json, false),
    }
}

/// `fencelock list [PREFIX]`.
pub async fn list(url: &str, json: bool, prefix: &str) -> u8 {
    let result = async { fencelock::inspector(url).await?.list(prefix).await }.await;
    match result {
        Ok(all) if json => {
            println!("{}", Value::Array(all.iter().map(to_json).collect()));
            0
        }
        Ok(all) => {
            for s in &all {
                println!("{}", human(s));
            }
            0
        }
        Err(e) => fail(&e, json, false),
    }
}
