//! Readers' push destinations and the fan-out's walk over them.

use crate::StoreError;
use crate::entity::{delivery, device, subscription};
use crate::preferences::{self, Preferences};
use chrono::{DateTime, Utc};
use futures::Stream;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

/// APNs environment a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApnsEnvironment {
    /// api.push.apple.com
    Production,
    /// api.sandbox.push.apple.com
    Sandbox,
}

impl ApnsEnvironment {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Production => "production",
            Self::Sandbox => "sandbox",
        }
    }
}

/// Where and how to reach a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceAddress {
    /// A browser's Web Push subscription.
    WebPush {
        /// Push service endpoint URL.
        endpoint: String,
        /// The subscription's P-256 public key (65 bytes, uncompressed).
        p256dh: Vec<u8>,
        /// The subscription's auth secret (16 bytes).
        auth: Vec<u8>,
    },
    /// An Android app's FCM registration token.
    Fcm {
        /// The token.
        token: String,
    },
    /// An iOS app's APNs device token.
    Apns {
        /// The token (64 hex characters).
        token: String,
        /// Production or sandbox.
        environment: ApnsEnvironment,
    },
}

impl DeviceAddress {
    /// `web`, `android` or `ios`.
    pub fn platform(&self) -> &'static str {
        match self {
            Self::WebPush { .. } => "web",
            Self::Fcm { .. } => "android",
            Self::Apns { .. } => "ios",
        }
    }

    fn key(&self) -> &str {
        match self {
            Self::WebPush { endpoint, .. } => endpoint,
            Self::Fcm { token } | Self::Apns { token, .. } => token,
        }
    }
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id (UUIDv7: keyset order is registration order).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// How to reach it.
    pub address: DeviceAddress,
    /// BCP 47 locale, if given.
    pub locale: Option<String>,
    /// IANA time zone, if given.
    pub timezone: Option<String>,
    /// First registration.
    pub created_at: DateTime<Utc>,
    /// Last registration.
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn to_device(m: device::Model) -> Option<Device> {
    let address = match m.platform.as_str() {
        "web" => DeviceAddress::WebPush {
            endpoint: m.address,
            p256dh: m.p256dh?,
            auth: m.auth?,
        },
        "android" => DeviceAddress::Fcm { token: m.address },
        "ios" => DeviceAddress::Apns {
            token: m.address,
            environment: match m.apns_environment.as_deref() {
                Some("sandbox") => ApnsEnvironment::Sandbox,
                _ => ApnsEnvironment::Production,
            },
        },
        _ => return None,
    };
    Some(Device {
        id: m.id,
        user_id: m.user_id,
        address,
        locale: m.locale,
        timezone: m.timezone,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// What registering a device needs.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// The caller.
    pub user_id: Uuid,
    /// How to reach it.
    pub address: DeviceAddress,
    /// BCP 47 locale.
    pub locale: Option<String>,
    /// IANA time zone.
    pub timezone: Option<String>,
}

/// Registers a device, idempotent on its endpoint/token: registering one that exists updates
/// it, revives it, and moves it to the caller. Beyond `max_per_user` the caller's oldest go.
pub async fn register(
    db: &DatabaseConnection,
    new: NewDevice,
    max_per_user: u64,
) -> Result<Device, StoreError> {
    let now = Utc::now();
    let (p256dh, auth, environment) = match &new.address {
        DeviceAddress::WebPush { p256dh, auth, .. } => {
            (Some(p256dh.clone()), Some(auth.clone()), None)
        }
        DeviceAddress::Fcm { .. } => (None, None, None),
        DeviceAddress::Apns { environment, .. } => {
            (None, None, Some(environment.as_str().to_string()))
        }
    };
    let txn = crate::begin_write(db).await?;
    let registered = async {
        let existing = device::Entity::find()
            .filter(device::Column::Platform.eq(new.address.platform()))
            .filter(device::Column::Address.eq(new.address.key()))
            .one(&txn)
            .await?;
        let saved = match existing {
            Some(found) => {
                device::ActiveModel {
                    id: Set(found.id),
                    user_id: Set(new.user_id),
                    p256dh: Set(p256dh),
                    auth: Set(auth),
                    apns_environment: Set(environment),
                    locale: Set(new.locale.clone()),
                    timezone: Set(new.timezone.clone()),
                    updated_at: Set(now),
                    dead_at: Set(None),
                    dead_reason: Set(None),
                    ..Default::default()
                }
                .update(&txn)
                .await?
            }
            None => {
                device::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    user_id: Set(new.user_id),
                    platform: Set(new.address.platform().to_string()),
                    address: Set(new.address.key().to_string()),
                    p256dh: Set(p256dh),
                    auth: Set(auth),
                    apns_environment: Set(environment),
                    locale: Set(new.locale.clone()),
                    timezone: Set(new.timezone.clone()),
                    created_at: Set(now),
                    updated_at: Set(now),
                    dead_at: Set(None),
                    dead_reason: Set(None),
                }
                .insert(&txn)
                .await?
            }
        };
        // Keep the newest `max_per_user` of the caller's devices.
        let stale: Vec<Uuid> = device::Entity::find()
            .filter(device::Column::UserId.eq(new.user_id))
            .order_by_desc(device::Column::UpdatedAt)
            .order_by_desc(device::Column::Id)
            .all(&txn)
            .await?
            .into_iter()
            .skip(usize::try_from(max_per_user).unwrap_or(usize::MAX))
            .map(|d| d.id)
            .collect();
        if !stale.is_empty() {
            device::Entity::delete_many()
                .filter(device::Column::Id.is_in(stale))
                .exec(&txn)
                .await?;
        }
        Ok::<_, StoreError>(saved)
    }
    .await;
    match registered {
        Ok(saved) => {
            txn.commit().await?;
            to_device(saved).ok_or(StoreError::NotFound)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// The user's live devices, newest first.
pub async fn list(db: &DatabaseConnection, user_id: Uuid) -> Result<Vec<Device>, StoreError> {
    Ok(device::Entity::find()
        .filter(device::Column::UserId.eq(user_id))
        .filter(device::Column::DeadAt.is_null())
        .order_by_desc(device::Column::UpdatedAt)
        .all(db)
        .await?
        .into_iter()
        .filter_map(to_device)
        .collect())
}

/// Removes one of the user's devices; `NotFound` when it is not theirs.
pub async fn delete(db: &DatabaseConnection, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
    let deleted = device::Entity::delete_many()
        .filter(device::Column::Id.eq(id))
        .filter(device::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Marks a device dead (the push service said it is gone); later fan-outs skip it.
pub async fn mark_dead(db: &DatabaseConnection, id: Uuid, reason: &str) -> Result<(), StoreError> {
    device::Entity::update_many()
        .col_expr(device::Column::DeadAt, Expr::value(Utc::now()))
        .col_expr(
            device::Column::DeadReason,
            Expr::value(reason.chars().take(200).collect::<String>()),
        )
        .filter(device::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// A device the fan-out should consider, with its owner's preferences (if set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The device.
    pub device: Device,
    /// The owner's preferences; `None` means the defaults.
    pub preferences: Option<Preferences>,
}

/// One keyset page of live devices whose owners follow any of `topics`, after `after`.
pub async fn targeted_page(
    db: &DatabaseConnection,
    topics: &[String],
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<Target>, StoreError> {
    let devices = targeted_devices(db, topics, after, None, Some(limit)).await?;
    with_preferences(db, devices).await
}

/// The (at most `limit`) live devices, in id order, with ids in `(after, until]`, whose owners follow
/// any of `topics`. A walk of the devices primary key probing the subscriptions primary key,
/// so its cost depends on the page, not on the audience.
pub async fn targeted_devices(
    db: &impl ConnectionTrait,
    topics: &[String],
    after: Option<Uuid>,
    until: Option<Uuid>,
    limit: Option<u64>,
) -> Result<Vec<Device>, StoreError> {
    let followers = Query::select()
        .column(subscription::Column::UserId)
        .from(subscription::Entity)
        .and_where(Expr::col(subscription::Column::TopicSlug).is_in(topics.iter().cloned()))
        .to_owned();
    let mut query = device::Entity::find()
        .filter(device::Column::DeadAt.is_null())
        .filter(device::Column::UserId.in_subquery(followers));
    if let Some(after) = after {
        query = query.filter(device::Column::Id.gt(after));
    }
    if let Some(until) = until {
        query = query.filter(device::Column::Id.lte(until));
    }
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    Ok(query
        .order_by_asc(device::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter_map(to_device)
        .collect())
}

/// Pairs each device with its owner's preferences (one query for all owners).
pub async fn with_preferences(
    db: &DatabaseConnection,
    devices: Vec<Device>,
) -> Result<Vec<Target>, StoreError> {
    let mut owners: Vec<Uuid> = devices.iter().map(|d| d.user_id).collect();
    owners.sort_unstable();
    owners.dedup();
    let prefs: HashMap<Uuid, Preferences> = preferences::for_users(db, &owners)
        .await?
        .into_iter()
        .collect();
    Ok(devices
        .into_iter()
        .map(|device| {
            let preferences = prefs.get(&device.user_id).cloned();
            Target {
                device,
                preferences,
            }
        })
        .collect())
}

/// Every target of `topics` as a stream of keyset pages of `batch`: memory stays bounded by
/// one page however large the audience.
pub fn targeted(
    db: &DatabaseConnection,
    topics: Vec<String>,
    batch: u64,
) -> impl Stream<Item = Result<Vec<Target>, StoreError>> + '_ {
    futures::stream::try_unfold(Some(None::<Uuid>), move |cursor| {
        let topics = topics.clone();
        async move {
            let Some(after) = cursor else { return Ok(None) };
            let page = targeted_page(db, &topics, after, batch).await?;
            if page.is_empty() {
                return Ok(None);
            }
            let next = (page.len() as u64 == batch).then(|| page.last().map(|t| t.device.id));
            Ok(Some((page, next)))
        }
    })
}

/// Alerts delivered to the device since `since` (the start of its local day, for the cap).
pub async fn sent_since(
    db: &DatabaseConnection,
    device_id: Uuid,
    since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::DeviceId.eq(device_id))
        .filter(delivery::Column::Status.eq("sent"))
        .filter(delivery::Column::SentAt.gte(since))
        .count(db)
        .await?)
}

/// Alerts the device received today, the day counted in `tz` (the reader's time zone).
pub async fn sent_today(
    db: &DatabaseConnection,
    device_id: Uuid,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    sent_since(db, device_id, preferences::local_day_start(tz, now)).await
}
