//! `fencelock-bench`: measures every backend against the floor and the peers (under construction).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

fn main() {
    println!("fencelock-bench: not built yet");
}
