//! Output: one clear line for people, JSON for scripts.

use std::error::Error as _;

use fencelock::Error;
use serde_json::{json, Value};

use crate::exit;

/// The error and its causes on one line.
pub fn one_line(e: &Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        // Some client errors print their own cause too: say each text once.
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

/// The error as JSON.
pub fn error_json(e: &Error) -> Value {
    json!({
        "error": {
            "kind": format!("{:?}", e.kind()),
            "message": one_line(e),
            "key": e.key(),
            "retryable": e.is_retryable(),
        }
    })
}

/// Reports a lock-service error (stdout as JSON, or stderr as one line)
/// and returns its exit code.
pub fn fail(e: &Error, json: bool, to_stderr: bool) -> u8 {
    if json && !to_stderr {
        println!("{}", error_json(e));
    } else if json {
        eprintln!("{}", error_json(e));
    } else {
        eprintln!("fencelock: {}", one_line(e));
    }
    exit::for_error(e)
}
