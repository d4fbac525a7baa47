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
    // A retracted alert leaves the inbox; an updated one shows its latest version.
    let mut query = alert::Entity::find()
        .filter(alert::Column::Id.in_subquery(delivered))
        .filter(alert::Column::RetractedAt.is_null());
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

/// What an alert about an article or a story starts from when the editor gives only the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSubject {
    /// The article the alert opens, if there is one.
    pub article_id: Option<Uuid>,
    /// The story it is about.
    pub story_id: Option<Uuid>,
    /// The article's title (or the story's headline when it has no article).
    pub title: String,
    /// The article's plain-text summary.
    pub summary: Option<String>,
    /// The article's link.
    pub url: Option<String>,
    /// The article's image.
    pub image_url: Option<String>,
    /// The article's topics (the story's, for a story).
    pub topics: Vec<String>,
}

fn article_subject_of(article: crate::articles::Article) -> AlertSubject {
    AlertSubject {
        article_id: Some(article.id),
        story_id: article.story_id,
        title: article.title,
        summary: article.summary,
        url: article.canonical_url,
        image_url: article.image_url,
        topics: article.topics,
    }
}

/// The alert subject of an article; `NotFound` when there is no such article.
pub async fn article_subject(
    db: &DatabaseConnection,
    article_id: Uuid,
) -> Result<AlertSubject, StoreError> {
    Ok(article_subject_of(
        crate::articles::get(db, article_id).await?,
    ))
}

/// The alert subject of a story, as the breaking-story trigger builds it: the story's headline,
/// and the link, summary and image of its newest article that has a link (the latest telling),
/// with the story's topics; the headline alone while no article has a link. `NotFound` when
/// there is no such story.
pub async fn story_subject(
    db: &DatabaseConnection,
    story_id: Uuid,
) -> Result<AlertSubject, StoreError> {
    let story = crate::stories::get(db, story_id).await?;
    let newest = crate::articles::by_story(db, story_id)
        .await?
        .into_iter()
        .filter(|a| a.canonical_url.is_some())
        .max_by_key(|a| a.published_at);
    let topics = story.topics;
    Ok(match newest {
        Some(article) => AlertSubject {
            story_id: Some(story.id),
            title: story.headline,
            topics: if topics.is_empty() {
                article.topics.clone()
            } else {
                topics
            },
            ..article_subject_of(article)
        },
        None => AlertSubject {
            article_id: None,
            story_id: Some(story.id),
            title: story.headline,
            summary: None,
            url: None,
            image_url: None,
            topics,
        },
    })
}

/// How many alerts exist, in any state.
pub async fn count(db: &DatabaseConnection) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(alert::Entity::find().count(db).await?)
}
