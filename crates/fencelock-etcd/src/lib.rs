//! fencelock etcd backend (under construction).
#![deny(missing_docs)]
#![forbid(unsafe_code)]
