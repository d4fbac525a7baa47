//! The notifier's durable queue: alerts cut into keyset batches of devices that notifier
//! processes lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), deliver and complete, plus the
//! per-device facts the fan-out decides with and the counters editors watch.
//!
//! An alert starts with one unplanned batch covering every device after nothing. Leasing an
//! unplanned batch plans it in the same transaction: it takes the next `batch_size` targeted
//! device ids, fixes its upper bound, and queues a new unplanned batch after it. The audience
//! is walked one page at a time, however large, and a crash loses nothing.
//!
//! By job: [`lease`] hands out batches, [`deliveries`] holds the per-device reads and the
//! outcome writes of the hot path, [`lifecycle`] moves alerts through their states (scheduled,
//! sending, done, cancelled, expired, retracted) and counts them, and [`versions`] keeps what
//! an alert said at each version and queues the replacements of an update.

mod deliveries;
mod lease;
mod lifecycle;
mod versions;

pub use deliveries::{
    DeliveryRecord, already_recorded, claim_story, followed, record, record_batch, sent_times,
    still_targeted,
};
pub use lease::{Lease, batch_targets, lease, lease_batch, release, renew};
use lifecycle::COUNTER_COLUMNS;
pub use lifecycle::{
    AlertCounters, cancel, complete, counters, depth, expire_due, finish_if_idle, release_scheduled,
};
pub use versions::{
    AlertChange, AlertVersion, Replacement, VersionKind, record_replacement, replace_stale,
    retract, update, versions,
};

use crate::StoreError;
use crate::entity::{alert, alert_batch};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait,
};
use uuid::Uuid;

/// An alert's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Waiting for its `send_at`; nothing is queued until then.
    Scheduled,
    /// Created, nothing leased yet.
    Queued,
    /// Some batch has been leased.
    Sending,
    /// Every batch is finished.
    Done,
    /// An editor cancelled it.
    Cancelled,
    /// Its TTL ran out before every batch was finished.
    Expired,
    /// Withdrawn by an editor after it was sent: gone from inboxes, replaced on devices.
    Retracted,
}

impl AlertState {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Retracted => "retracted",
        }
    }

    /// From the stored text; unknown values read as `Done` (nothing more is sent).
    pub fn parse(text: &str) -> Self {
        match text {
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            "retracted" => Self::Retracted,
            _ => Self::Done,
        }
    }

    /// True while first deliveries may still be made.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }

    /// True while what devices already show may still be replaced (an update or a retraction).
    pub fn replaces(self) -> bool {
        matches!(self, Self::Sending | Self::Done | Self::Retracted)
    }
}

const ACTIVE_ALERT_STATES: [&str; 2] = ["queued", "sending"];
const OPEN_BATCH_STATES: [&str; 2] = ["queued", "leased"];

/// What happened to one device for one alert, as recorded in `deliveries.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The push service accepted it.
    Sent,
    /// Permanently refused, or retried until the TTL ran out.
    Failed,
    /// The push service said the device is gone; it was marked dead.
    Pruned,
    /// Inside the device's quiet hours.
    QuietHours,
    /// The device reached its daily cap.
    DailyCap,
    /// The device already got (or is getting) this story.
    Duplicate,
    /// The owner no longer follows any of the alert's topics (or the device was removed).
    Unfollowed,
}

impl DeliveryStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Pruned => "pruned",
            Self::QuietHours => "quiet_hours",
            Self::DailyCap => "daily_cap",
            Self::Duplicate => "duplicate",
            Self::Unfollowed => "unfollowed",
        }
    }
}

/// What enqueuing an alert needs.
#[derive(Debug, Clone)]
pub struct NewQueuedAlert {
    /// The story it is about (the once-per-story key).
    pub story_id: Option<Uuid>,
    /// The article it opens.
    pub article_id: Option<Uuid>,
    /// Topics whose followers get it.
    pub topics: Vec<String>,
    /// Lock-screen title.
    pub title: String,
    /// Lock-screen body.
    pub body: String,
    /// Where a tap leads.
    pub url: String,
    /// Image, if any.
    pub image_url: Option<String>,
    /// `normal` or `high` (any RFC 8030 urgency).
    pub urgency: String,
    /// How long delivery stays worth trying, in seconds.
    pub ttl_seconds: i32,
    /// `editor`, `source` or `story`.
    pub trigger: String,
    /// The editor who sent it.
    pub created_by: Option<Uuid>,
    /// When to start sending; `None`: now.
    pub send_at: Option<DateTime<Utc>>,
    /// Deliver at this local time (`HH:MM`) in each reader's time zone, within a day.
    pub local_time: Option<String>,
}

/// An alert as the fan-out sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAlert {
    /// Id.
    pub id: Uuid,
    /// Story.
    pub story_id: Option<Uuid>,
    /// Article.
    pub article_id: Option<Uuid>,
    /// Topics whose followers get it.
    pub topics: Vec<String>,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link.
    pub url: String,
    /// Image.
    pub image_url: Option<String>,
    /// Urgency as stored.
    pub urgency: String,
    /// TTL in seconds.
    pub ttl_seconds: i32,
    /// Lifecycle state.
    pub state: AlertState,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The current version: 1, plus one per update or retraction.
    pub version: u32,
    /// The current version replaces without sound (a correction).
    pub silent: bool,
    /// When sending starts (scheduled alerts); `None`: at creation.
    pub send_at: Option<DateTime<Utc>>,
    /// Local delivery time `HH:MM` in each reader's time zone, if the alert has one.
    pub local_time: Option<String>,
    /// When it was withdrawn.
    pub retracted_at: Option<DateTime<Utc>>,
}

/// How long after its start a local-time alert keeps finding devices' local times.
pub const LOCAL_TIME_WINDOW: ChronoDuration = ChronoDuration::hours(24);

impl QueuedAlert {
    /// When sending starts: the scheduled time, else creation.
    pub fn starts_at(&self) -> DateTime<Utc> {
        self.send_at.unwrap_or(self.created_at)
    }

    /// When delivering stops being worth it: the TTL after the start, and for a local-time
    /// alert after the last local time in its window.
    pub fn expires_at(&self) -> DateTime<Utc> {
        let ttl = ChronoDuration::seconds(i64::from(std::cmp::max(self.ttl_seconds, 0)));
        let window = if self.local_time.is_some() {
            LOCAL_TIME_WINDOW
        } else {
            ChronoDuration::zero()
        };
        self.starts_at() + window + ttl
    }

    /// The once-per-story key: the story, or the alert itself when it has none.
    pub fn story_key(&self) -> Uuid {
        self.story_id.unwrap_or(self.id)
    }
}

fn to_queued(m: alert::Model) -> QueuedAlert {
    QueuedAlert {
        id: m.id,
        story_id: m.story_id,
        article_id: m.article_id,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        title: m.title,
        body: m.body,
        url: m.url,
        image_url: m.image_url,
        urgency: m.urgency,
        ttl_seconds: m.ttl_seconds,
        state: AlertState::parse(&m.state),
        created_at: m.created_at,
        version: u32::try_from(m.version).unwrap_or(1),
        silent: m.silent,
        send_at: m.send_at,
        local_time: m.local_time,
        retracted_at: m.retracted_at,
    }
}

async fn finish<T>(
    txn: DatabaseTransaction,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Creates an alert with its first version, and its first (unplanned) batch in the same
/// transaction; a scheduled alert (`send_at` in the future) gets its batch when it is due
/// ([`release_scheduled`]).
pub async fn enqueue(
    db: &DatabaseConnection,
    new: NewQueuedAlert,
) -> Result<QueuedAlert, StoreError> {
    let now = Utc::now();
    let scheduled = new.send_at.is_some_and(|at| at > now);
    let state = if scheduled {
        AlertState::Scheduled
    } else {
        AlertState::Queued
    };
    let txn = crate::begin_write(db).await?;
    let result = async {
        let model = alert::ActiveModel {
            id: Set(Uuid::now_v7()),
            story_id: Set(new.story_id),
            article_id: Set(new.article_id),
            topics: Set(serde_json::json!(new.topics)),
            title: Set(new.title),
            body: Set(new.body),
            url: Set(new.url),
            image_url: Set(new.image_url),
            urgency: Set(new.urgency),
            ttl_seconds: Set(new.ttl_seconds),
            state: Set(state.as_str().into()),
            trigger: Set(new.trigger),
            created_by: Set(new.created_by),
            created_at: Set(now),
            finished_at: Set(None),
            version: Set(1),
            silent: Set(false),
            send_at: Set(new.send_at),
            local_time: Set(new.local_time),
            updated_at: Set(None),
            retracted_at: Set(None),
        }
        .insert(&txn)
        .await?;
        versions::insert_original(&txn, &model).await?;
        if !scheduled {
            insert_unplanned(&txn, model.id, None, now).await?;
        }
        Ok(to_queued(model))
    }
    .await;
    finish(txn, result).await
}

async fn insert_unplanned(
    db: &impl ConnectionTrait,
    alert_id: Uuid,
    after: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    alert_batch::ActiveModel {
        id: Set(Uuid::now_v7()),
        alert_id: Set(alert_id),
        after_device_id: Set(after),
        until_device_id: Set(None),
        planned: Set(false),
        device_count: Set(0),
        state: Set("queued".into()),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        attempts: Set(0),
        created_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The alert, for the fan-out.
pub async fn alert(db: &DatabaseConnection, id: Uuid) -> Result<QueuedAlert, StoreError> {
    alert::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_queued)
        .ok_or(StoreError::NotFound)
}
