//! What an editor reads about one alert after sending it: deliveries and opens by platform and
//! by topic, how fast it reached readers, and its opens over the first hour. Counts only: no
//! reader, device or address leaves this module.

use crate::StoreError;
use crate::entity::{alert, delivery, device};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
use uuid::Uuid;

/// Deliveries and opens of one slice of an alert's audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The platform (`web`, `android`, `ios`) or topic slug.
    pub key: String,
    /// Devices a push service accepted it for.
    pub delivered: u64,
    /// Of those, the devices it was opened on.
    pub opened: u64,
}

/// One alert's analytics.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertAnalytics {
    /// When sending started.
    pub started_at: DateTime<Utc>,
    /// Devices a push service accepted it for.
    pub delivered: u64,
    /// Of those, the devices it was opened on.
    pub opened: u64,
    /// By platform.
    pub by_platform: Vec<Slice>,
    /// By the followed topic it was sent for.
    pub by_topic: Vec<Slice>,
    /// Seconds from the start until half of the deliveries were made.
    pub seconds_to_50: Option<f64>,
    /// Seconds from the start until nine tenths of the deliveries were made.
    pub seconds_to_90: Option<f64>,
    /// Opens in each interval of the first hour, from the start.
    pub opens_first_hour: Vec<u64>,
    /// Seconds per interval of `opens_first_hour`.
    pub bucket_seconds: u32,
}

/// Intervals in the first-hour opens series (five minutes each).
const BUCKETS: u32 = 12;

fn sent(alert_id: Uuid) -> SelectStatement {
    Query::select()
        .from(delivery::Entity)
        .and_where(Expr::col((delivery::Entity, delivery::Column::AlertId)).eq(alert_id))
        .and_where(Expr::col((delivery::Entity, delivery::Column::Status)).eq("sent"))
        .to_owned()
}

async fn slices(
    db: &DatabaseConnection,
    alert_id: Uuid,
    key: Expr,
    join_devices: bool,
) -> Result<Vec<Slice>, StoreError> {
    let opened = Expr::cust(
        "CAST(COALESCE(SUM(CASE WHEN deliveries.opened_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT)",
    );
    let mut query = sent(alert_id);
    query
        .expr_as(key.clone(), Alias::new("slice"))
        .expr_as(
            Expr::cust("CAST(COUNT(*) AS BIGINT)"),
            Alias::new("delivered"),
        )
        .expr_as(opened, Alias::new("opened"))
        .add_group_by([key])
        .order_by(Alias::new("slice"), Order::Asc);
    if join_devices {
        query.left_join(
            device::Entity,
            Expr::col((device::Entity, device::Column::Id))
                .equals((delivery::Entity, delivery::Column::DeviceId)),
        );
    }
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut out = Vec::new();
    for row in db.query_all(&query).await? {
        out.push(Slice {
            key: row
                .try_get::<Option<String>>("", "slice")?
                .unwrap_or_else(|| "unknown".into()),
            delivered: n(row.try_get("", "delivered")?),
            opened: n(row.try_get("", "opened")?),
        });
    }
    Ok(out)
}

/// The `rank`-th earliest delivery time (0-based).
async fn nth_sent_at(
    db: &DatabaseConnection,
    alert_id: Uuid,
    rank: u64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut query = sent(alert_id);
    query
        .column((delivery::Entity, delivery::Column::SentAt))
        .order_by((delivery::Entity, delivery::Column::SentAt), Order::Asc)
        .limit(1)
        .offset(rank);
    match db.query_one(&query).await? {
        Some(row) => Ok(row.try_get::<Option<DateTime<Utc>>>("", "sent_at")?),
        None => Ok(None),
    }
}

/// The analytics of one alert; `NotFound` when there is no such alert.
pub async fn alert_analytics(
    db: &DatabaseConnection,
    alert_id: Uuid,
) -> Result<AlertAnalytics, StoreError> {
    let alert = alert::Entity::find_by_id(alert_id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let started_at = alert.send_at.unwrap_or(alert.created_at);
    let platform = Expr::col((device::Entity, device::Column::Platform));
    let topic = Expr::col((delivery::Entity, delivery::Column::Topic));
    let by_platform = slices(db, alert_id, platform, true).await?;
    let by_topic = slices(db, alert_id, topic, false).await?;
    let delivered: u64 = by_platform.iter().map(|s| s.delivered).sum();
    let opened: u64 = by_platform.iter().map(|s| s.opened).sum();
    let seconds_to = |share: f64| {
        let rank = ((delivered as f64 * share).ceil() as u64).saturating_sub(1);
        async move {
            if delivered == 0 {
                return Ok::<_, StoreError>(None);
            }
            Ok(nth_sent_at(db, alert_id, rank)
                .await?
                .map(|at| std::cmp::max((at - started_at).num_milliseconds(), 0) as f64 / 1000.0))
        }
    };
    let seconds_to_50 = seconds_to(0.5).await?;
    let seconds_to_90 = seconds_to(0.9).await?;
    let bucket = ChronoDuration::minutes(60) / BUCKETS as i32;
    let mut opens_first_hour = vec![0u64; BUCKETS as usize];
    let mut query = Query::select();
    query
        .column(delivery::Column::OpenedAt)
        .from(delivery::Entity)
        .and_where(Expr::col(delivery::Column::AlertId).eq(alert_id))
        .and_where(Expr::col(delivery::Column::OpenedAt).gte(started_at))
        .and_where(Expr::col(delivery::Column::OpenedAt).lt(started_at + ChronoDuration::hours(1)));
    for row in db.query_all(&query).await? {
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>>("", "opened_at")? {
            let index = ((at - started_at).num_milliseconds()
                / std::cmp::max(bucket.num_milliseconds(), 1))
            .clamp(0, i64::from(BUCKETS) - 1);
            opens_first_hour[index as usize] += 1;
        }
    }
    Ok(AlertAnalytics {
        started_at,
        delivered,
        opened,
        by_platform,
        by_topic,
        seconds_to_50,
        seconds_to_90,
        opens_first_hour,
        bucket_seconds: u32::try_from(bucket.num_seconds()).unwrap_or(300),
    })
}
