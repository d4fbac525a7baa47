//! WebSub (W3C Recommendation) subscriptions and the queue of pushed feed bodies.
//!
//! One subscription per source. The ingest role requests it (`subscribing`), the hub's
//! verification of intent reaching the api role makes it `active` with a lease, a renewal
//! keeps it active while `renewing`, an unsubscription is `unsubscribing` until the hub
//! verifies it. Pushed bodies the api role accepted wait in `websub_deliveries` until an
//! ingest worker leases them, so one process owns the story clusterer. A deleted source's
//! subscription leaves an unsubscription owed to its hub in `websub_departures`, which the
//! ingest role sends until the hub verifies it or the lease it granted runs out.

use crate::entity::{websub_delivery, websub_departure, websub_subscription};
use crate::{Backend, Secret, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionState {
    /// Requested; the hub has not verified it yet.
    Subscribing,
    /// Verified; the hub delivers until the lease runs out.
    Active,
    /// Active, and a renewal has been requested.
    Renewing,
    /// Unsubscription requested; the hub has not verified it yet.
    Unsubscribing,
    /// The hub refused it (`hub.mode=denied`).
    Denied,
    /// The hub did not accept the request.
    Failed,
}

impl SubscriptionState {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribing => "subscribing",
            Self::Active => "active",
            Self::Renewing => "renewing",
            Self::Unsubscribing => "unsubscribing",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }

    /// From the stored text (unknown text reads as `Failed`: nothing is trusted).
    pub fn parse(text: &str) -> Self {
        match text {
            "subscribing" => Self::Subscribing,
            "active" => Self::Active,
            "renewing" => Self::Renewing,
            "unsubscribing" => Self::Unsubscribing,
            "denied" => Self::Denied,
            _ => Self::Failed,
        }
    }
}

/// A source's WebSub subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The source.
    pub source_id: Uuid,
    /// The hub's URL.
    pub hub_url: String,
    /// The topic (the feed's self URL).
    pub topic_url: String,
    /// The unguessable last segment of the callback URL.
    pub callback_token: String,
    /// The HMAC key the hub signs deliveries with.
    pub secret: Secret<String>,
    /// Where it stands.
    pub state: SubscriptionState,
    /// When it was last requested (subscribe, renew or unsubscribe).
    pub requested_at: DateTime<Utc>,
    /// When the hub last verified it.
    pub verified_at: Option<DateTime<Utc>>,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the hub last delivered a body that was accepted.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// Bodies accepted.
    pub deliveries: u64,
    /// Bodies refused (bad or missing signature, refused algorithm, not active).
    pub rejected_deliveries: u64,
    /// Why the last request failed or was denied.
    pub last_error: Option<String>,
}

impl Subscription {
    /// Whether the hub is expected to deliver now: verified and within its lease.
    pub fn delivers(&self, now: DateTime<Utc>) -> bool {
        matches!(
            self.state,
            SubscriptionState::Active | SubscriptionState::Renewing
        ) && self.lease_expires_at.is_some_and(|until| until > now)
    }
}

fn to_subscription(m: websub_subscription::Model) -> Subscription {
    Subscription {
        source_id: m.source_id,
        hub_url: m.hub_url,
        topic_url: m.topic_url,
        callback_token: m.callback_token,
        secret: Secret::new(m.secret),
        state: SubscriptionState::parse(&m.state),
        requested_at: m.requested_at,
        verified_at: m.verified_at,
        lease_expires_at: m.lease_expires_at,
        last_delivery_at: m.last_delivery_at,
        deliveries: u64::try_from(m.deliveries).unwrap_or(0),
        rejected_deliveries: u64::try_from(m.rejected_deliveries).unwrap_or(0),
        last_error: m.last_error,
    }
}

/// A subscription request about to be sent to a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The source.
    pub source_id: Uuid,
    /// The hub's URL.
    pub hub_url: String,
    /// The topic URL.
    pub topic_url: String,
    /// The callback's last path segment.
    pub callback_token: String,
    /// The HMAC key.
    pub secret: Secret<String>,
}

/// Records a subscription request before it is sent: a new one (or one for another hub or
/// topic) is `subscribing` with fresh counters' lease; a renewal of an active subscription
/// to the same hub and topic stays deliverable as `renewing` under its current lease.
pub async fn request_subscribe(
    db: &DatabaseConnection,
    request: &SubscribeRequest,
    now: DateTime<Utc>,
) -> Result<Subscription, StoreError> {
    use websub_subscription::Column as C;
    let existing = get(db, request.source_id).await?;
    let renewal = existing.as_ref().is_some_and(|s| {
        s.delivers(now)
            && s.hub_url == request.hub_url
            && s.topic_url == request.topic_url
            && s.callback_token == request.callback_token
    });
    let state = if renewal {
        SubscriptionState::Renewing
    } else {
        SubscriptionState::Subscribing
    };
    let lease = if renewal {
        existing.as_ref().and_then(|s| s.lease_expires_at)
    } else {
        None
    };
    let model = websub_subscription::ActiveModel {
        source_id: Set(request.source_id),
        hub_url: Set(request.hub_url.clone()),
        topic_url: Set(request.topic_url.clone()),
        callback_token: Set(request.callback_token.clone()),
        secret: Set(request.secret.expose().clone()),
        state: Set(state.as_str().to_owned()),
        requested_at: Set(now),
        verified_at: Set(None),
        lease_expires_at: Set(lease),
        last_delivery_at: Set(None),
        deliveries: Set(0),
        rejected_deliveries: Set(0),
        last_error: Set(None),
        updated_at: Set(now),
    };
    websub_subscription::Entity::insert(model)
        .on_conflict(
            OnConflict::column(C::SourceId)
                .update_columns([
                    C::HubUrl,
                    C::TopicUrl,
                    C::CallbackToken,
                    C::Secret,
                    C::State,
                    C::RequestedAt,
                    C::LeaseExpiresAt,
                    C::LastError,
                    C::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    get(db, request.source_id)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Records an unsubscription request before it is sent; `NotFound` when there is none.
pub async fn request_unsubscribe(
    db: &DatabaseConnection,
    source_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Subscription, StoreError> {
    set_state(db, source_id, SubscriptionState::Unsubscribing, None, now).await?;
    get(db, source_id).await?.ok_or(StoreError::NotFound)
}

async fn set_state(
    db: &DatabaseConnection,
    source_id: Uuid,
    state: SubscriptionState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    use websub_subscription::Column as C;
    let mut update = websub_subscription::Entity::update_many()
        .col_expr(C::State, Expr::value(state.as_str()))
        .col_expr(C::UpdatedAt, Expr::value(now));
    if matches!(state, SubscriptionState::Unsubscribing) {
        update = update.col_expr(C::RequestedAt, Expr::value(now));
    }
    if let Some(error) = error {
        let error: String = error.chars().take(1000).collect();
        update = update.col_expr(C::LastError, Expr::value(error));
    }
    let done = update.filter(C::SourceId.eq(source_id)).exec(db).await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The hub did not accept a request (it answered an error, or could not be reached): the
/// subscription stops delivering at once, so the source is polled normally again.
pub async fn request_failed(
    db: &DatabaseConnection,
    source_id: Uuid,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    set_state(db, source_id, SubscriptionState::Failed, Some(error), now).await
}

/// The mode a hub's verification of intent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyMode {
    /// `hub.mode=subscribe`.
    Subscribe,
    /// `hub.mode=unsubscribe`.
    Unsubscribe,
}

/// The hub's verification of intent: true (and the subscription confirmed, with a lease of
/// `lease_seconds` from `now`; or removed, for an unsubscription) only when the callback
/// token, the topic and the mode match a request of ours that is still pending.
pub async fn verify(
    db: &DatabaseConnection,
    source_id: Uuid,
    callback_token: &str,
    mode: VerifyMode,
    topic: &str,
    lease_seconds: Option<u32>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use websub_subscription::Column as C;
    let filter = websub_subscription::Entity::update_many()
        .filter(C::SourceId.eq(source_id))
        .filter(C::CallbackToken.eq(callback_token))
        .filter(C::TopicUrl.eq(topic));
    let done = match mode {
        VerifyMode::Subscribe => {
            let lease = lease_seconds.map(|s| now + Duration::seconds(i64::from(s)));
            filter
                .col_expr(C::State, Expr::value(SubscriptionState::Active.as_str()))
                .col_expr(C::VerifiedAt, Expr::value(now))
                .col_expr(C::LeaseExpiresAt, Expr::value(lease))
                .col_expr(C::LastError, Expr::value(Option::<String>::None))
                .col_expr(C::UpdatedAt, Expr::value(now))
                .filter(C::State.is_in([
                    SubscriptionState::Subscribing.as_str(),
                    SubscriptionState::Renewing.as_str(),
                ]))
                .exec(db)
                .await?
        }
        VerifyMode::Unsubscribe => {
            let done = websub_subscription::Entity::delete_many()
                .filter(C::SourceId.eq(source_id))
                .filter(C::CallbackToken.eq(callback_token))
                .filter(C::TopicUrl.eq(topic))
                .filter(C::State.eq(SubscriptionState::Unsubscribing.as_str()))
                .exec(db)
                .await?;
            if done.rows_affected > 0 {
                return Ok(true);
            }
            // A deleted source's unsubscription, once sent.
            use websub_departure::Column as D;
            let done = websub_departure::Entity::delete_many()
                .filter(D::SourceId.eq(source_id))
                .filter(D::CallbackToken.eq(callback_token))
                .filter(D::TopicUrl.eq(topic))
                .filter(D::RequestedAt.is_not_null())
                .exec(db)
                .await?;
            return Ok(done.rows_affected > 0);
        }
    };
    Ok(done.rows_affected > 0)
}

/// The hub refused a pending subscription (`hub.mode=denied`): true when it was ours.
pub async fn deny(
    db: &DatabaseConnection,
    source_id: Uuid,
    callback_token: &str,
    topic: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use websub_subscription::Column as C;
    let reason: String = format!("denied by the hub: {}", reason.unwrap_or("no reason given"))
        .chars()
        .take(1000)
        .collect();
    let done = websub_subscription::Entity::update_many()
        .col_expr(C::State, Expr::value(SubscriptionState::Denied.as_str()))
        .col_expr(
            C::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(C::LastError, Expr::value(reason))
        .col_expr(C::UpdatedAt, Expr::value(now))
        .filter(C::SourceId.eq(source_id))
        .filter(C::CallbackToken.eq(callback_token))
        .filter(C::TopicUrl.eq(topic))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// A source's subscription, if any.
pub async fn get(
    db: &DatabaseConnection,
    source_id: Uuid,
) -> Result<Option<Subscription>, StoreError> {
    Ok(websub_subscription::Entity::find_by_id(source_id)
        .one(db)
        .await?
        .map(to_subscription))
}

/// Every subscription.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<Subscription>, StoreError> {
    Ok(websub_subscription::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(to_subscription)
        .collect())
}

/// The delivering (or renewing) subscriptions of sources the newsroom paused: the ingest
/// role unsubscribes them, and subscribes again when a resumed source is polled.
pub async fn of_paused_sources(db: &DatabaseConnection) -> Result<Vec<Subscription>, StoreError> {
    use crate::entity::source;
    let paused: Vec<Uuid> = source::Entity::find()
        .select_only()
        .column(source::Column::Id)
        .filter(source::Column::LeaseOwner.eq(crate::newsroom::PAUSED_OWNER))
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    if paused.is_empty() {
        return Ok(Vec::new());
    }
    Ok(websub_subscription::Entity::find()
        .filter(websub_subscription::Column::SourceId.is_in(paused))
        .filter(websub_subscription::Column::State.is_in([
            SubscriptionState::Active.as_str(),
            SubscriptionState::Renewing.as_str(),
        ]))
        .all(db)
        .await?
        .into_iter()
        .map(to_subscription)
        .collect())
}

/// Removes a source's subscription (nothing to tell the hub, or the hub is gone).
pub async fn remove(db: &DatabaseConnection, source_id: Uuid) -> Result<(), StoreError> {
    websub_subscription::Entity::delete_by_id(source_id)
        .exec(db)
        .await?;
    Ok(())
}

/// An unsubscription owed to a hub for a source that was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    /// The deleted source (the callback URL still names it).
    pub source_id: Uuid,
    /// The hub's URL.
    pub hub_url: String,
    /// The topic subscribed to.
    pub topic_url: String,
    /// The callback's last path segment.
    pub callback_token: String,
    /// Unsubscription requests sent so far.
    pub attempts: u32,
    /// Why the last request failed.
    pub last_error: Option<String>,
    /// When the hub's lease ends: after that there is nothing left to unsubscribe.
    pub give_up_at: DateTime<Utc>,
}

fn to_departure(m: websub_departure::Model) -> Departure {
    Departure {
        source_id: m.source_id,
        hub_url: m.hub_url,
        topic_url: m.topic_url,
        callback_token: m.callback_token,
        attempts: u32::try_from(m.attempts).unwrap_or(0),
        last_error: m.last_error,
        give_up_at: m.give_up_at,
    }
}

/// Inside a source's deletion (`conn` is its transaction): when the source's hub may still
/// deliver (a lease that has not run out, whatever the state), records the unsubscription the
/// hub is owed, due at once and kept until that lease ends.
pub(crate) async fn owe_unsubscription<C: ConnectionTrait>(
    conn: &C,
    source_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(sub) = websub_subscription::Entity::find_by_id(source_id)
        .one(conn)
        .await?
    else {
        return Ok(());
    };
    let Some(lease_end) = sub.lease_expires_at.filter(|end| *end > now) else {
        return Ok(());
    };
    use websub_departure::Column as D;
    websub_departure::Entity::insert(websub_departure::ActiveModel {
        source_id: Set(source_id),
        hub_url: Set(sub.hub_url),
        topic_url: Set(sub.topic_url),
        callback_token: Set(sub.callback_token),
        requested_at: Set(None),
        next_attempt_at: Set(now),
        give_up_at: Set(lease_end),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(D::SourceId)
            .update_columns([
                D::HubUrl,
                D::TopicUrl,
                D::CallbackToken,
                D::NextAttemptAt,
                D::GiveUpAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Unsubscriptions owed to hubs that are due at `now` (at most `limit`, oldest first); those
/// whose lease has ended are dropped first, since the hub has stopped by itself.
pub async fn departures_due(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Departure>, StoreError> {
    use websub_departure::Column as D;
    websub_departure::Entity::delete_many()
        .filter(D::GiveUpAt.lte(now))
        .exec(db)
        .await?;
    Ok(websub_departure::Entity::find()
        .filter(D::NextAttemptAt.lte(now))
        .order_by_asc(D::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_departure)
        .collect())
}

/// Claims a due unsubscription before it is sent: marks it requested (so the hub's
/// verification is answered) and not due again before `retry_at`. False when another process
/// claimed it first or it is gone.
pub async fn claim_departure(
    db: &DatabaseConnection,
    source_id: Uuid,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    use websub_departure::Column as D;
    let done = websub_departure::Entity::update_many()
        .col_expr(D::RequestedAt, Expr::value(now))
        .col_expr(D::NextAttemptAt, Expr::value(retry_at))
        .col_expr(D::Attempts, Expr::col(D::Attempts).add(1))
        .filter(D::SourceId.eq(source_id))
        .filter(D::NextAttemptAt.lte(now))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Records why an owed unsubscription's request failed (it is asked again when due).
pub async fn departure_failed(
    db: &DatabaseConnection,
    source_id: Uuid,
    error: &str,
) -> Result<(), StoreError> {
    use websub_departure::Column as D;
    let error: String = error.chars().take(1000).collect();
    websub_departure::Entity::update_many()
        .col_expr(D::LastError, Expr::value(error))
        .filter(D::SourceId.eq(source_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The unsubscription owed for a deleted source, if any is left.
pub async fn departure(
    db: &DatabaseConnection,
    source_id: Uuid,
) -> Result<Option<Departure>, StoreError> {
    Ok(websub_departure::Entity::find_by_id(source_id)
        .one(db)
        .await?
        .map(to_departure))
}

/// Counts a pushed body that was refused (bad signature and the like).
pub async fn count_rejected(db: &DatabaseConnection, source_id: Uuid) -> Result<(), StoreError> {
    use websub_subscription::Column as C;
    websub_subscription::Entity::update_many()
        .col_expr(
            C::RejectedDeliveries,
            Expr::col(C::RejectedDeliveries).add(1),
        )
        .filter(C::SourceId.eq(source_id))
        .exec(db)
        .await?;
    Ok(())
}

/// What became of a pushed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued for the ingest role.
    Queued(Uuid),
    /// The source already has `max_backlog` bodies waiting: the hub should retry later.
    Backlogged,
}

/// Queues a verified pushed body of `source_id` for ingestion and counts the delivery.
pub async fn enqueue(
    db: &DatabaseConnection,
    source_id: Uuid,
    body: Vec<u8>,
    content_type: Option<String>,
    now: DateTime<Utc>,
    max_backlog: u64,
) -> Result<Enqueued, StoreError> {
    use websub_delivery::Column as D;
    use websub_subscription::Column as C;
    let waiting = websub_delivery::Entity::find()
        .filter(D::SourceId.eq(source_id))
        .count(db)
        .await?;
    if waiting >= max_backlog {
        return Ok(Enqueued::Backlogged);
    }
    let id = Uuid::now_v7();
    let content_type = content_type.map(|c| c.chars().take(255).collect());
    websub_delivery::Entity::insert(websub_delivery::ActiveModel {
        id: Set(id),
        source_id: Set(source_id),
        body: Set(body),
        content_type: Set(content_type),
        received_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    websub_subscription::Entity::update_many()
        .col_expr(C::Deliveries, Expr::col(C::Deliveries).add(1))
        .col_expr(C::LastDeliveryAt, Expr::value(now))
        .filter(C::SourceId.eq(source_id))
        .exec(db)
        .await?;
    Ok(Enqueued::Queued(id))
}

/// A pushed body waiting for ingestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id.
    pub id: Uuid,
    /// The source it belongs to.
    pub source_id: Uuid,
    /// The feed document the hub sent.
    pub body: Vec<u8>,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// When the api role accepted it.
    pub received_at: DateTime<Utc>,
}

/// Claims up to `limit` waiting bodies for `owner` until `now + lease`, oldest first, and
/// at most one per source (so one source's bodies are ingested in order). Several ingest
/// processes can call this at once; each body goes to one of them.
pub async fn lease_deliveries(
    db: &DatabaseConnection,
    owner: &str,
    now: DateTime<Utc>,
    limit: u64,
    lease: std::time::Duration,
) -> Result<Vec<Delivery>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let expires = now + Duration::from_std(lease).unwrap_or(Duration::minutes(2));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The oldest waiting body of each source whose bodies are not being ingested already.
    let oldest = "SELECT d.id FROM websub_deliveries d \
         WHERE (d.lease_expires_at IS NULL OR d.lease_expires_at < {now}) \
         AND NOT EXISTS (SELECT 1 FROM websub_deliveries o WHERE o.source_id = d.source_id \
           AND (o.received_at < d.received_at OR (o.received_at = d.received_at AND o.id < d.id) \
             OR (o.lease_expires_at IS NOT NULL AND o.lease_expires_at >= {now}))) \
         ORDER BY d.received_at LIMIT {limit}";
    let sql = match Backend::of(db) {
        Backend::Postgres => format!(
            "UPDATE websub_deliveries SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id IN ({} FOR UPDATE SKIP LOCKED) RETURNING *",
            oldest.replace("{now}", "$3").replace("{limit}", "$4")
        ),
        Backend::Sqlite => format!(
            "UPDATE websub_deliveries SET lease_owner = ?1, lease_expires_at = ?2 \
             WHERE id IN ({}) AND (lease_expires_at IS NULL OR lease_expires_at < ?3) \
             RETURNING *",
            oldest.replace("{now}", "?3").replace("{limit}", "?4")
        ),
    };
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [owner.into(), expires.into(), now.into(), limit.into()],
    );
    let txn = crate::begin_write(db).await?;
    let claimed = websub_delivery::Entity::find()
        .from_raw_sql(statement)
        .all(&txn)
        .await;
    match claimed {
        Ok(claimed) => {
            txn.commit().await?;
            let mut claimed: Vec<Delivery> = claimed
                .into_iter()
                .map(|m| Delivery {
                    id: m.id,
                    source_id: m.source_id,
                    body: m.body,
                    content_type: m.content_type,
                    received_at: m.received_at,
                })
                .collect();
            claimed.sort_by_key(|d| d.received_at);
            Ok(claimed)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err.into())
        }
    }
}

/// Whether any pushed body waits unleased (or under a lapsed lease): one indexed read, cheap
/// enough to ask many times a second.
pub async fn any_waiting(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<bool, StoreError> {
    use sea_orm::QuerySelect;
    use websub_delivery::Column as D;
    let found = websub_delivery::Entity::find()
        .select_only()
        .column(D::Id)
        .filter(
            sea_orm::Condition::any()
                .add(D::LeaseExpiresAt.is_null())
                .add(D::LeaseExpiresAt.lt(now)),
        )
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Removes an ingested (or unusable) body held by `owner`.
pub async fn finish_delivery(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
) -> Result<(), StoreError> {
    websub_delivery::Entity::delete_many()
        .filter(websub_delivery::Column::Id.eq(id))
        .filter(websub_delivery::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives back the bodies `owner` holds (a worker stopping), for another worker to ingest.
pub async fn release_deliveries(db: &DatabaseConnection, owner: &str) -> Result<(), StoreError> {
    use websub_delivery::Column as D;
    websub_delivery::Entity::update_many()
        .col_expr(D::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(
            D::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(D::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Bodies waiting (or being ingested) for `source_id`.
pub async fn waiting(db: &DatabaseConnection, source_id: Uuid) -> Result<u64, StoreError> {
    Ok(websub_delivery::Entity::find()
        .filter(websub_delivery::Column::SourceId.eq(source_id))
        .count(db)
        .await?)
}

/// A source's WebSub status as its health shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushHealth {
    /// `off`, `none` (no hub advertised), or the subscription's state.
    pub state: String,
    /// Why, in words an operator can act on.
    pub detail: String,
}

/// Describes a source's WebSub status: off without a public URL, else its subscription.
pub fn describe(
    public_url_set: bool,
    subscription: Option<&Subscription>,
    now: DateTime<Utc>,
) -> PushHealth {
    let health = |state: &str, detail: String| PushHealth {
        state: state.to_owned(),
        detail,
    };
    if !public_url_set {
        return health(
            "off",
            "WebSub is off: set http.public_url so hubs can reach the callback".into(),
        );
    }
    let Some(sub) = subscription else {
        return health(
            "none",
            "the feed advertises no WebSub hub; polled as usual".into(),
        );
    };
    match sub.state {
        SubscriptionState::Active | SubscriptionState::Renewing if sub.delivers(now) => health(
            sub.state.as_str(),
            format!(
                "pushed by {} until {}; {} deliveries, {} refused",
                sub.hub_url,
                sub.lease_expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
                sub.deliveries,
                sub.rejected_deliveries
            ),
        ),
        SubscriptionState::Active | SubscriptionState::Renewing => health(
            "lapsed",
            format!(
                "the lease at {} ran out; polled as usual until renewed",
                sub.hub_url
            ),
        ),
        SubscriptionState::Subscribing => health(
            "subscribing",
            format!("waiting for {} to verify the subscription", sub.hub_url),
        ),
        SubscriptionState::Unsubscribing => health(
            "unsubscribing",
            format!("waiting for {} to verify the unsubscription", sub.hub_url),
        ),
        SubscriptionState::Denied | SubscriptionState::Failed => health(
            sub.state.as_str(),
            sub.last_error
                .clone()
                .unwrap_or_else(|| "the hub did not accept the subscription".into()),
        ),
    }
}
