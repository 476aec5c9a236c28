//! The options of a URL's query.

use std::str::FromStr;
use std::time::Duration;

use crate::parse::{duration, percent_decode};
use crate::{Error, Result};

/// The options of a URL's query, handed out by name. Every name asked for
/// becomes a known option; [`finish`](UrlOptions::finish) rejects the rest.
#[derive(Clone, PartialEq, Eq)]
pub struct UrlOptions {
    store: &'static str,
    url: String,
    pairs: Vec<(String, String)>,
    taken: Vec<bool>,
    known: Vec<&'static str>,
}

impl std::fmt::Debug for UrlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlOptions")
            .field(
                "names",
                &self.pairs.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl UrlOptions {
    pub(super) fn from_query(store: &'static str, query: &str, url: &str) -> Result<UrlOptions> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v).ok_or_else(|| {
                Error::invalid_config(format!(
                    "bad {store} URL {url:?}: option {k} is not valid percent-encoding"
                ))
            })?;
            if pairs.iter().any(|(seen, _)| seen == k) {
                return Err(Error::invalid_config(format!(
                    "bad {store} URL {url:?}: option {k} is given twice"
                )));
            }
            pairs.push((k.to_string(), v));
        }
        let taken = vec![false; pairs.len()];
        Ok(UrlOptions {
            store,
            url: url.to_string(),
            pairs,
            taken,
            known: Vec::new(),
        })
    }

    /// An error about option `name` (for checks a backend makes itself).
    pub fn error(&self, name: &str, why: impl std::fmt::Display) -> Error {
        Error::invalid_config(format!(
            "bad {} URL {:?}: option {name}: {why}",
            self.store, self.url
        ))
    }

    /// The raw value of `name`, if given; `name` becomes known.
    pub fn string(&mut self, name: &'static str) -> Option<String> {
        if !self.known.contains(&name) {
            self.known.push(name);
        }
        self.take(name)
    }

    /// Whether `name` was given, without taking it (a backend that refuses
    /// an option in some mode asks this first).
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    fn take(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        self.taken[i] = true;
        Some(self.pairs[i].1.clone())
    }

    /// A duration option (`500ms`, `3s`, ...).
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when the value is not a duration.
    pub fn duration(&mut self, name: &'static str) -> Result<Option<Duration>> {
        self.string(name)
            .map(|v| duration(&v).map_err(|why| self.error(name, why)))
            .transpose()
    }

    /// An option parsed with [`FromStr`]; `what` says what it must be ("a
    /// whole number of replicas") in the error.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when the value does not parse.
    pub fn parse<T: FromStr>(&mut self, name: &'static str, what: &str) -> Result<Option<T>> {
        self.string(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| self.error(name, format!("{v:?} is not {what}")))
            })
            .transpose()
    }

    /// The value of an old spelling `old` of option `new`, if given, with
    /// a warning naming `new`. Giving both is an error. The old name is
    /// accepted but not listed among the known options.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when both `old` and `new` are given.
    pub fn deprecated(&mut self, old: &'static str, new: &'static str) -> Result<Option<String>> {
        let Some(v) = self.take(old) else {
            return Ok(None);
        };
        if self.has(new) {
            return Err(self.error(
                old,
                format!("is the old spelling of {new}; give only {new}"),
            ));
        }
        tracing::warn!(
            target: "fencelock",
            store = self.store,
            "URL option {old} is deprecated and will be removed; write {new} instead"
        );
        Ok(Some(v))
    }

    /// [`deprecated`](Self::deprecated) for an old option that took plain
    /// milliseconds (`connect_timeout_ms=500` for `connect_timeout=500ms`).
    ///
    /// # Errors
    ///
    /// `InvalidConfig` when both are given or the value is not a number.
    pub fn deprecated_millis(
        &mut self,
        old: &'static str,
        new: &'static str,
    ) -> Result<Option<Duration>> {
        self.deprecated(old, new)?
            .map(|v| {
                v.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                    self.error(old, format!("{v:?} is not a whole number of milliseconds"))
                })
            })
            .transpose()
    }

    /// A duration option `new` or its old spelling `old` (same format).
    ///
    /// # Errors
    ///
    /// As [`duration`](Self::duration) and [`deprecated`](Self::deprecated).
    pub fn duration_or(
        &mut self,
        new: &'static str,
        old: &'static str,
    ) -> Result<Option<Duration>> {
        let older = self.deprecated(old, new)?;
        match older {
            Some(v) => duration(&v).map(Some).map_err(|why| self.error(old, why)),
            None => self.duration(new),
        }
    }

    /// The options not yet taken, as written (`name=value`, value decoded),
    /// for a backend that hands a fixed list on to its client library.
    /// They become taken.
    pub fn take_named(&mut self, names: &[&'static str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for name in names {
            if !self.known.contains(name) {
                self.known.push(name);
            }
            if let Some(v) = self.take(name) {
                out.push(((*name).to_string(), v));
            }
        }
        out
    }

    /// Ends reading: an option no one asked for is an error naming it and
    /// the known options.
    ///
    /// # Errors
    ///
    /// `InvalidConfig` naming the first unknown option.
    pub fn finish(self) -> Result<()> {
        match self.pairs.iter().zip(&self.taken).find(|(_, t)| !**t) {
            None => Ok(()),
            Some(((name, _), _)) => {
                let mut known = self.known.clone();
                known.sort_unstable();
                Err(Error::invalid_config(format!(
                    "bad {} URL {:?}: unknown option {name:?}; known options: {}",
                    self.store,
                    self.url,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
        }
    }
}
