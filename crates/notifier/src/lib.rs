//! Alert triggers, the durable fan-out queue, and the Web Push, FCM and APNs senders.

pub mod breaker;
pub mod config;
pub mod draft;
pub mod fanout;
pub mod rules;
pub mod send;
pub mod test_send;
pub mod webpush;

#[cfg(feature = "fakes")]
pub mod fakes;
pub mod triggers;
