//! One `pub async fn` per behaviour of the contract. Each panics with a
//! message when the backend breaks the promise.

mod abandon;
mod bounds;
mod exclusion;
mod input;
mod loss;
mod outage;
mod waiting;

pub use abandon::{abandonment, cancellation, drop_frees};
pub use bounds::{hold_cap, ttl_without_renewal};
pub use exclusion::{cross_process, exclusion};
pub use input::{hostile_keys, unreachable};
pub use loss::{lost_signal, lost_signal_paused, no_foreign_release, renewal};
pub use outage::store_paused;
pub use waiting::{busy, fairness, wakeup};
