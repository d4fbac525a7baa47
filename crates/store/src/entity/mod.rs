//! Sea-orm entities, one module per table. Private to the store: other crates get domain types.

pub(crate) mod alert;
pub(crate) mod alert_batch;
pub(crate) mod alert_version;
pub(crate) mod article;
pub(crate) mod comment;
pub(crate) mod delivery;
pub(crate) mod delivery_retry;
pub(crate) mod device;
pub(crate) mod identity;
pub(crate) mod key_material;
pub(crate) mod preference;
pub(crate) mod refresh_token;
pub(crate) mod session;
pub(crate) mod source;
pub(crate) mod source_health;
pub(crate) mod story;
pub(crate) mod story_breaking_event;
pub(crate) mod story_receipt;
pub(crate) mod subscription;
pub(crate) mod throttle_event;
pub(crate) mod topic;
pub(crate) mod user;
pub(crate) mod websub_delivery;
pub(crate) mod websub_departure;
pub(crate) mod websub_subscription;
