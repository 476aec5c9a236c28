#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod forced;
mod inspect;
mod lock;
mod path;

pub use lock::{FileLock, FileLockStatus};
