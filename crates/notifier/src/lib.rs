//! Alert triggers, the durable fan-out queue, and the Web Push, FCM and APNs senders.

pub mod webpush;
