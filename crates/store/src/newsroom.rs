//! What the newsroom console reads beyond the reader's lists: stories with their breaking
//! marks, alert history with who sent what, opens over time, the facts an audience estimate
//! is decided on, sources' pause switch and their items per day.

use crate::devices::{self, Target};
use crate::entity::{alert, article, delivery, source, story, story_receipt, topic, user};
use crate::queue::{self, AlertCounters};
use crate::stories::{Story, to_story};
use crate::{Backend, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A story as the newsroom sees it: its counts and how close it is to alerting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewsroomStory {
    /// The story.
    pub story: Story,
    /// Some alert (editor's or automatic) was made about it.
    pub alerted: bool,
    /// The breaking rule of its topics nearest to firing: distinct publishers needed...
    pub min_sources: Option<u32>,
    /// ...distinct publishers with an article published within that rule's window now...
    pub publishers_in_window: u32,
    /// ...and the window, in minutes.
    pub window_minutes: Option<u32>,
    /// Not breaking yet, and one publisher short of a topic's rule (SPEC §5 rule 3), counted
    /// as the ingest counts it: distinct publishers with an article published in the window.
    pub near_breaking: bool,
}

/// Where a story list stopped: most recently updated first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoryKey {
    /// When an article was last added.
    pub updated_at: DateTime<Utc>,
    /// Tie-break.
    pub id: Uuid,
}

/// One page of stories after `after`, most recently updated first; `topic` keeps stories
/// tagged with it, `search` those whose headline contains it (case-insensitive).
pub async fn stories(
    db: &DatabaseConnection,
    topic_slug: Option<&str>,
    search: Option<&str>,
    after: Option<StoryKey>,
    limit: u64,
) -> Result<Vec<NewsroomStory>, StoreError> {
    let backend = db.get_database_backend();
    let mut values: Vec<Value> = Vec::new();
    let mut param = |v: Value| {
        values.push(v);
        match Backend::of(db) {
            Backend::Postgres => format!("${}", values.len()),
            Backend::Sqlite => "?".to_string(),
        }
    };
    let mut text = "SELECT st.* FROM stories st WHERE 1 = 1".to_string();
    if let Some(slug) = topic_slug {
        text += &format!(
            " AND EXISTS (SELECT 1 FROM articles a JOIN article_topics t \
             ON t.article_id = a.id WHERE a.story_id = st.id AND t.topic = {})",
            param(slug.to_string().into())
        );
    }
    if let Some(search) = search {
        let pattern = format!(
            "%{}%",
            search
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        text += &format!(
            " AND LOWER(st.headline) LIKE {} ESCAPE '\\'",
            param(pattern.into())
        );
    }
    if let Some(key) = after {
        let at = param(key.updated_at.into());
        let id = param(key.id.into());
        text += &format!(" AND (st.updated_at < {at} OR (st.updated_at = {at} AND st.id < {id}))");
    }
    let limit = i64::try_from(std::cmp::min(limit, 1000)).unwrap_or(1000);
    text += &format!(
        " ORDER BY st.updated_at DESC, st.id DESC LIMIT {}",
        param(limit.into())
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, text, values))
        .await?;
    let found: Vec<Story> = rows
        .iter()
        .map(|row| Ok(to_story(story::Model::from_query_result(row, "")?)))
        .collect::<Result<_, StoreError>>()?;
    let ids: Vec<Uuid> = found.iter().map(|s| s.id).collect();
    let alerted: HashSet<Uuid> = if ids.is_empty() {
        HashSet::new()
    } else {
        alert::Entity::find()
            .select_only()
            .column(alert::Column::StoryId)
            .filter(alert::Column::StoryId.is_in(ids.clone()))
            .into_tuple::<Option<Uuid>>()
            .all(db)
            .await?
            .into_iter()
            .flatten()
            .collect()
    };
    let rules: HashMap<String, (u32, u32)> = topic::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| {
            let min = u32::try_from(t.min_sources).unwrap_or(0);
            let window = u32::try_from(t.window_minutes).unwrap_or(0);
            (t.slug, (min, window))
        })
        .collect();
    // Each publisher's newest article per story: one read for the whole page.
    let mut newest: HashMap<Uuid, Vec<DateTime<Utc>>> = HashMap::new();
    if !ids.is_empty() {
        let rows: Vec<(Option<Uuid>, Uuid, Option<DateTime<Utc>>)> = article::Entity::find()
            .select_only()
            .column(article::Column::StoryId)
            .column(article::Column::SourceId)
            .column_as(
                Expr::col(article::Column::PublishedAt).max(),
                "published_at",
            )
            .filter(article::Column::StoryId.is_in(ids.clone()))
            .group_by(article::Column::StoryId)
            .group_by(article::Column::SourceId)
            .into_tuple()
            .all(db)
            .await?;
        for (story_id, _, at) in rows {
            if let (Some(story_id), Some(at)) = (story_id, at) {
                newest.entry(story_id).or_default().push(at);
            }
        }
    }
    let now = Utc::now();
    Ok(found
        .into_iter()
        .map(|story| {
            let times = newest.get(&story.id).map(Vec::as_slice).unwrap_or_default();
            // (publishers still needed, min_sources, publishers in the window, window) per rule.
            let nearest = story
                .topics
                .iter()
                .filter_map(|t| rules.get(t).copied())
                .map(|(min, window)| {
                    let since = now - Duration::minutes(i64::from(std::cmp::max(window, 1)));
                    let recent = times.iter().filter(|at| **at >= since).count() as u32;
                    let needed = std::cmp::max(min, 1);
                    (needed.saturating_sub(recent), needed, recent, window)
                })
                .min();
            NewsroomStory {
                alerted: alerted.contains(&story.id),
                min_sources: nearest.map(|n| n.1),
                publishers_in_window: nearest.map_or(0, |n| n.2),
                window_minutes: nearest.map(|n| n.3),
                near_breaking: story.breaking_at.is_none()
                    && nearest.is_some_and(|(missing, _, recent, _)| missing <= 1 && recent > 0),
                story,
            }
        })
        .collect())
}

/// One alert in the newsroom's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSummary {
    /// Its counters and state.
    pub counters: AlertCounters,
    /// Title as sent.
    pub title: String,
    /// Body as sent.
    pub body: String,
    /// Topics it went to.
    pub topics: Vec<String>,
    /// The story it is about.
    pub story_id: Option<Uuid>,
    /// `editor`, `source` or `story`.
    pub trigger: String,
    /// The editor who sent it (`None` for automatic alerts or a deleted editor).
    pub created_by: Option<Uuid>,
    /// That editor's email.
    pub created_by_email: Option<String>,
    /// Urgency as sent.
    pub urgency: String,
}

/// Alerts newest first, a page after `before` (created_at, id), each with its counters.
pub async fn history(
    db: &DatabaseConnection,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: u64,
) -> Result<Vec<AlertSummary>, StoreError> {
    let mut query = alert::Entity::find();
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
    let editors: Vec<Uuid> = alerts.iter().filter_map(|a| a.created_by).collect();
    let emails: HashMap<Uuid, Option<String>> = if editors.is_empty() {
        HashMap::new()
    } else {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Email)
            .filter(user::Column::Id.is_in(editors))
            .into_tuple::<(Uuid, Option<String>)>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    let mut page = Vec::with_capacity(alerts.len());
    for a in alerts {
        // Counters are sums kept on the alert's batches: a page costs the same however large.
        let counters = queue::counters(db, a.id).await?;
        page.push(AlertSummary {
            counters,
            created_by_email: a.created_by.and_then(|u| emails.get(&u).cloned().flatten()),
            title: a.title,
            body: a.body,
            topics: serde_json::from_value(a.topics).unwrap_or_default(),
            story_id: a.story_id,
            trigger: a.trigger,
            created_by: a.created_by,
            urgency: a.urgency,
        });
    }
    Ok(page)
}

/// When each of the alert's readers first opened it, oldest first (one time per reader, as
/// [`queue::counters`] counts opens); `NotFound` when there is no such alert.
pub async fn open_times(
    db: &DatabaseConnection,
    alert_id: Uuid,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    alert::Entity::find_by_id(alert_id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let rows: Vec<(Uuid, Option<DateTime<Utc>>)> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::UserId)
        .column_as(Expr::col(delivery::Column::OpenedAt).min(), "opened_at")
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::OpenedAt.is_not_null())
        .group_by(delivery::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    let mut times: Vec<DateTime<Utc>> = rows.into_iter().filter_map(|(_, at)| at).collect();
    times.sort_unstable();
    Ok(times)
}

/// One page of what an audience estimate decides on: live devices whose owners follow any
/// of `topics` (the fan-out's own targeting query), with their owners' preferences, when
/// each was sent an alert since `since`, and which already have `story`.
#[derive(Debug, Clone, Default)]
pub struct AudiencePage {
    /// Targeted devices with preferences, in id order.
    pub targets: Vec<Target>,
    /// Alerts sent to each device since `since`.
    pub sent_times: HashMap<Uuid, Vec<DateTime<Utc>>>,
    /// Devices that already have (or are getting) the story.
    pub has_story: HashSet<Uuid>,
}

/// The audience page after `after` (at most `limit` devices); empty when the walk is over.
pub async fn audience_page(
    db: &DatabaseConnection,
    topics: &[String],
    story: Option<Uuid>,
    since: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> Result<AudiencePage, StoreError> {
    let targets = devices::targeted_page(db, topics, after, limit).await?;
    if targets.is_empty() {
        return Ok(AudiencePage::default());
    }
    let ids: Vec<Uuid> = targets.iter().map(|t| t.device.id).collect();
    let mut sent_times: HashMap<Uuid, Vec<DateTime<Utc>>> = HashMap::new();
    for (device, at) in queue::sent_times(db, &ids, since).await? {
        sent_times.entry(device).or_default().push(at);
    }
    let has_story = match story {
        Some(story) => story_receipt::Entity::find()
            .select_only()
            .column(story_receipt::Column::DeviceId)
            .filter(story_receipt::Column::StoryId.eq(story))
            .filter(story_receipt::Column::DeviceId.is_in(ids))
            .into_tuple::<Uuid>()
            .all(db)
            .await?
            .into_iter()
            .collect(),
        None => HashSet::new(),
    };
    Ok(AudiencePage {
        targets,
        sent_times,
        has_story,
    })
}

/// The lease owner that marks a paused source. A paused source holds a lease that never runs
/// out and is due at the end of time, so the scheduler's `lease_due` never picks it, and a
/// fetch in flight when it was paused records nothing (`record_fetch` needs its own lease).
pub const PAUSED_OWNER: &str = "paused-by-newsroom";

/// The far-off instant a paused source is due and its lease runs out.
fn end_of_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Pauses (`true`) or resumes (`false`, due at once) a source; `NotFound` when absent.
pub async fn set_paused(db: &DatabaseConnection, id: Uuid, paused: bool) -> Result<(), StoreError> {
    let now = Utc::now();
    let (owner, until, due) = if paused {
        (
            Some(PAUSED_OWNER.to_string()),
            Some(end_of_time()),
            end_of_time(),
        )
    } else {
        (None, None, now)
    };
    let mut update = source::Entity::update_many()
        .col_expr(source::Column::LeaseOwner, Expr::value(owner))
        .col_expr(source::Column::LeaseExpiresAt, Expr::value(until))
        .col_expr(source::Column::NextFetchAt, Expr::value(due))
        .col_expr(source::Column::UpdatedAt, Expr::value(now))
        .filter(source::Column::Id.eq(id));
    if !paused {
        // Resuming a source that is not paused must not steal a running fetch's lease.
        update = update.filter(source::Column::LeaseOwner.eq(PAUSED_OWNER));
    }
    let updated = update.exec(db).await?;
    if updated.rows_affected == 0 {
        source::Entity::find_by_id(id)
            .one(db)
            .await?
            .ok_or(StoreError::NotFound)?;
    }
    Ok(())
}

/// The ids of the paused sources.
pub async fn paused(db: &DatabaseConnection) -> Result<HashSet<Uuid>, StoreError> {
    Ok(source::Entity::find()
        .select_only()
        .column(source::Column::Id)
        .filter(source::Column::LeaseOwner.eq(PAUSED_OWNER))
        .into_tuple::<Uuid>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Articles stored per day for each source, averaged over the last week (over its life when
/// it is younger than a week, and over at least a day, so a feed's first fetch of its backlog
/// does not read as a torrent).
pub async fn items_per_day(db: &DatabaseConnection) -> Result<HashMap<Uuid, f64>, StoreError> {
    let now = Utc::now();
    let since = now - Duration::days(7);
    let counts: Vec<(Uuid, i64)> = article::Entity::find()
        .select_only()
        .column(article::Column::SourceId)
        .column_as(Expr::col(article::Column::Id).count(), "n")
        .filter(article::Column::FetchedAt.gte(since))
        .group_by(article::Column::SourceId)
        .into_tuple()
        .all(db)
        .await?;
    let created: HashMap<Uuid, DateTime<Utc>> = source::Entity::find()
        .select_only()
        .column(source::Column::Id)
        .column(source::Column::CreatedAt)
        .into_tuple::<(Uuid, DateTime<Utc>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(counts
        .into_iter()
        .map(|(id, n)| {
            let start = std::cmp::max(created.get(&id).copied().unwrap_or(since), since);
            let days = (std::cmp::max((now - start).num_seconds(), 86_400) as f64) / 86_400.0;
            (id, n as f64 / days)
        })
        .collect())
}
