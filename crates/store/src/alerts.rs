//! The reader's inbox: the alerts they were sent, and the taps they report.
//! Alerts are created and delivered through [`crate::queue`].

use crate::StoreError;
use crate::entity::{alert, delivery};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Id.
    pub id: Uuid,
    /// Story.
    pub story_id: Option<Uuid>,
    /// Article.
    pub article_id: Option<Uuid>,
    /// Topics.
    pub topics: Vec<String>,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link.
    pub url: String,
    /// Image.
    pub image_url: Option<String>,
    /// `queued`, `sending`, `done`, `cancelled` or `expired`.
    pub state: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

fn to_alert(m: alert::Model) -> Alert {
    Alert {
        id: m.id,
        story_id: m.story_id,
        article_id: m.article_id,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        title: m.title,
        body: m.body,
        url: m.url,
        image_url: m.image_url,
        state: m.state,
        created_at: m.created_at,
    }
}

/// One alert in a reader's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    /// The alert.
    pub alert: Alert,
    /// The reader tapped it on some device.
    pub opened: bool,
}

/// The alerts sent to the user, newest first, a page after `before` (created_at, id).
pub async fn inbox(
    db: &DatabaseConnection,
    user_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<InboxItem>, StoreError> {
    let delivered = Query::select()
        .column(delivery::Column::AlertId)
        .from(delivery::Entity)
        .and_where(Expr::col(delivery::Column::UserId).eq(user_id))
        .and_where(Expr::col(delivery::Column::Status).eq("sent"))
        .to_owned();
    let mut query = alert::Entity::find().filter(alert::Column::Id.in_subquery(delivered));
    if let Some((at, id)) = before {
        query = query.filter(
            Condition::any().add(alert::Column::CreatedAt.lt(at)).add(
                Condition::all()
                    .add(alert::Column::CreatedAt.eq(at))
                    .add(alert::Column::Id.lt(id)),
            ),
        );
    }
    let alerts = query
        .order_by_desc(alert::Column::CreatedAt)
        .order_by_desc(alert::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = alerts.iter().map(|a| a.id).collect();
    let opened: Vec<Uuid> = delivery::Entity::find()
        .filter(delivery::Column::UserId.eq(user_id))
        .filter(delivery::Column::AlertId.is_in(ids))
        .filter(delivery::Column::OpenedAt.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .map(|d| d.alert_id)
        .collect();
    Ok(alerts
        .into_iter()
        .map(|a| InboxItem {
            opened: opened.contains(&a.id),
            alert: to_alert(a),
        })
        .collect())
}

/// Records that the user opened the alert; `NotFound` when it was never sent to them.
pub async fn mark_opened(
    db: &DatabaseConnection,
    user_id: Uuid,
    alert_id: Uuid,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let updated = delivery::Entity::update_many()
        .col_expr(delivery::Column::OpenedAt, Expr::value(now))
        .filter(delivery::Column::UserId.eq(user_id))
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::Status.eq("sent"))
        .filter(delivery::Column::OpenedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected > 0 {
        return Ok(());
    }
    let sent = delivery::Entity::find()
        .filter(delivery::Column::UserId.eq(user_id))
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::Status.eq("sent"))
        .one(db)
        .await?;
    sent.map(|_| ()).ok_or(StoreError::NotFound)
}
