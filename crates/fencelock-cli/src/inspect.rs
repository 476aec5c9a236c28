//! `fencelock status`, `fencelock list` and `fencelock unlock --force`.

use fencelock::ForcedUnlock;
use serde_json::{json, Value};

use crate::report::{fail, holder_json, holder_text, status_json, status_text, usage};

/// `fencelock status KEY`.
pub async fn status(url: &str, json: bool, key: &str) -> u8 {
    let result = async { fencelock::inspector(url).await?.status(key).await }.await;
    match result {
        Ok(s) if json => {
            println!("{}", status_json(&s));
            0
        }
        Ok(s) => {
            println!("{}", status_text(&s));
            0
        }
        Err(e) => fail(&e, json, false),
    }
}

/// `fencelock list [--all] [PREFIX]`.
pub async fn list(url: &str, json: bool, all: bool, prefix: &str) -> u8 {
    let result = async {
        let inspector = fencelock::inspector(url).await?;
        if all {
            inspector.list_all(prefix).await
        } else {
            inspector.list(prefix).await
        }
    }
    .await;
    match result {
        Ok(found) if json => {
            println!("{}", Value::Array(found.iter().map(status_json).collect()));
            0
        }
        Ok(found) if found.is_empty() => {
            let what = if all {
                "no locks known"
            } else {
                "no locks held or waited for"
            };
            if prefix.is_empty() {
                println!("{what}");
            } else {
                println!("{what} under {prefix:?}");
            }
            0
        }
        Ok(found) => {
            for s in &found {
                println!("{}", status_text(s));
            }
            0
        }
        Err(e) => fail(&e, json, false),
    }
}

fn unlock_json(f: &ForcedUnlock) -> Value {
    json!({
        "key": f.key,
        "removed": f.removed.iter().map(holder_json).collect::<Vec<_>>(),
        "raised_to": f.raised_to.map(|t| t.get()),
    })
}

fn unlock_text(f: &ForcedUnlock) -> String {
    let mut line = if f.removed.is_empty() {
        format!("{}: nothing held, nothing removed", f.key)
    } else {
        let all: Vec<String> = f.removed.iter().map(holder_text).collect();
        format!("{}: removed the grant held {}", f.key, all.join("; and "))
    };
    match f.raised_to {
        Some(t) => line.push_str(&format!("; the next grant's token will be above {t}")),
        None if !f.removed.is_empty() => {
            line.push_str("; the next grant's token will be above the removed one");
        }
        None => {}
    }
    line
}

/// `fencelock unlock --force KEY`.
pub async fn unlock(url: &str, json: bool, force: bool, key: &str) -> u8 {
    if !force {
        return usage(
            &format!(
                "unlock deletes the grant on {key:?} whoever holds it, and its holder may still be working: say --force to do it"
            ),
            json,
            false,
        );
    }
    let result = async { fencelock::inspector(url).await?.force_unlock(key).await }.await;
    match result {
        Ok(f) if json => {
            println!("{}", unlock_json(&f));
            0
        }
        Ok(f) => {
            println!("{}", unlock_text(&f));
            0
        }
        Err(e) => fail(&e, json, false),
    }
}
