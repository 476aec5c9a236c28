//! Output: one clear line for people, JSON for scripts.

use std::error::Error as _;

use fencelock::{Error, ErrorKind, Holder, LockStatus};
use serde_json::{json, Value};

use crate::exit;

/// The error's causes, outermost first, one line each.
fn causes(e: &Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = flat(&c.to_string());
        // Some errors wrap one of the same text: say it once.
        if out.last() != Some(&text) {
            out.push(text);
        }
        cause = c.source();
    }
    out
}

/// Text on one line.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The error on one line. For an outage (`Connection`, `Timeout`) the
/// backends' message names the endpoint and what went wrong, and the
/// client library's own text (often a debug dump) is left to `--json`;
/// other errors get their causes appended, each said once.
pub fn one_line(e: &Error) -> String {
    let mut line = flat(&e.to_string());
    if matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout) {
        return line;
    }
    for text in causes(e) {
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// The error as JSON: `{"error": {kind, message, key, retryable, causes}}`.
pub fn error_json(e: &Error) -> Value {
    json!({
        "error": {
            "kind": format!("{:?}", e.kind()),
            "message": one_line(e),
            "key": e.key(),
            "retryable": e.is_retryable(),
            "causes": causes(e),
        }
    })
}

/// A usage error that is not a lock-service error: one line, or JSON
/// with kind `Usage`.
pub fn usage(message: &str, json: bool, to_stderr: bool) -> u8 {
    if json {
        let v = json!({"error": {"kind": "Usage", "message": message, "key": null,
            "retryable": false, "causes": []}});
        emit(&v, to_stderr);
    } else {
        eprintln!("fencelock: {message}");
    }
    exit::USAGE
}

fn emit(v: &Value, to_stderr: bool) {
    if to_stderr {
        eprintln!("{v}");
    } else {
        println!("{v}");
    }
}

/// Reports a lock-service error (stdout as JSON, or stderr as one line)
/// and returns its exit code.
pub fn fail(e: &Error, json: bool, to_stderr: bool) -> u8 {
    if json {
        emit(&error_json(e), to_stderr);
    } else {
        eprintln!("fencelock: {}", one_line(e));
    }
    exit::for_error(e)
}

/// One holder as JSON.
pub fn holder_json(h: &Holder) -> Value {
    json!({
        "owner": h.owner,
        "token": h.token.map(|t| t.get()),
        "remaining_ms": h.remaining.map(|d| d.as_millis()),
        "foreign": h.foreign,
    })
}

/// One holder for people: `by OWNER, token N, 1.5s left`.
pub fn holder_text(h: &Holder) -> String {
    let mut text = format!("by {}", h.label());
    if let Some(t) = h.token {
        text.push_str(&format!(", token {t}"));
    }
    if let Some(r) = h.remaining {
        text.push_str(&format!(", {:.1}s left", r.as_secs_f64()));
    }
    text
}

/// A status as JSON.
pub fn status_json(s: &LockStatus) -> Value {
    json!({
        "key": s.key,
        "held": s.held,
        "owner": s.owner,
        "token": s.token.map(|t| t.get()),
        "remaining_ms": s.remaining.map(|d| d.as_millis()),
        "waiters": s.waiters,
        "holders": s.holders.iter().map(holder_json).collect::<Vec<_>>(),
    })
}

/// A status for people, on one line.
pub fn status_text(s: &LockStatus) -> String {
    let mut line = format!("{}: ", s.key);
    if s.holders.is_empty() && s.held {
        line.push_str("held");
    } else if s.holders.is_empty() {
        line.push_str("free");
        if let Some(t) = s.token {
            line.push_str(&format!(" (last token {t})"));
        }
    } else {
        let all: Vec<String> = s.holders.iter().map(holder_text).collect();
        line.push_str("held ");
        line.push_str(&all.join("; and "));
    }
    if let Some(w) = s.waiters.filter(|w| *w > 0) {
        line.push_str(&format!(", {w} waiting"));
    }
    line
}
