//! fencelock zookeeper backend (under construction).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
