//! Readers' comments on articles, oldest first. Bodies are stored exactly as typed; deleting
//! one removes it.

use crate::StoreError;
use crate::entity::{article, comment, user};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// A comment with its author's public name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Comment id (UUIDv7).
    pub id: Uuid,
    /// The article it is on.
    pub article_id: Uuid,
    /// Who wrote it.
    pub user_id: Uuid,
    /// The author's display name, if they chose one.
    pub author_name: Option<String>,
    /// Plain text as typed.
    pub body: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

/// A comment's place in its article's list: oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentKey {
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Comment id: the tie-break.
    pub id: Uuid,
}

impl Comment {
    /// Its place in the list.
    pub fn key(&self) -> CommentKey {
        CommentKey {
            created_at: self.created_at,
            id: self.id,
        }
    }
}

/// Posts `body` on `article_id`; [`StoreError::NotFound`] when the article does not exist.
pub async fn create(
    db: &DatabaseConnection,
    article_id: Uuid,
    user_id: Uuid,
    body: &str,
    now: DateTime<Utc>,
) -> Result<Comment, StoreError> {
    if article::Entity::find_by_id(article_id)
        .select_only()
        .column(article::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound);
    }
    let id = Uuid::now_v7();
    comment::Entity::insert(comment::ActiveModel {
        id: Set(id),
        article_id: Set(article_id),
        user_id: Set(user_id),
        body: Set(body.to_string()),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    get(db, id).await
}

/// One comment.
pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Comment, StoreError> {
    let found = comment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut named = with_names(db, vec![found]).await?;
    named.pop().ok_or(StoreError::NotFound)
}

/// One page of an article's comments after `after`, oldest first.
pub async fn list(
    db: &DatabaseConnection,
    article_id: Uuid,
    after: Option<CommentKey>,
    limit: u64,
) -> Result<Vec<Comment>, StoreError> {
    let mut query = comment::Entity::find().filter(comment::Column::ArticleId.eq(article_id));
    if let Some(key) = after {
        query = query.filter(
            Condition::any()
                .add(comment::Column::CreatedAt.gt(key.created_at))
                .add(
                    Condition::all()
                        .add(comment::Column::CreatedAt.eq(key.created_at))
                        .add(comment::Column::Id.gt(key.id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(comment::Column::CreatedAt)
        .order_by_asc(comment::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    with_names(db, rows).await
}

/// Deletes a comment; [`StoreError::NotFound`] when there is none.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StoreError> {
    let deleted = comment::Entity::delete_by_id(id).exec(db).await?;
    if deleted.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn with_names(
    db: &DatabaseConnection,
    rows: Vec<comment::Model>,
) -> Result<Vec<Comment>, StoreError> {
    let mut authors: Vec<Uuid> = rows.iter().map(|c| c.user_id).collect();
    authors.sort_unstable();
    authors.dedup();
    let names: Vec<(Uuid, Option<String>)> = if authors.is_empty() {
        Vec::new()
    } else {
        user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::DisplayName)
            .filter(user::Column::Id.is_in(authors))
            .into_tuple()
            .all(db)
            .await?
    };
    Ok(rows
        .into_iter()
        .map(|c| {
            let author_name = names
                .iter()
                .find(|(id, _)| *id == c.user_id)
                .and_then(|(_, name)| name.clone());
            Comment {
                id: c.id,
                article_id: c.article_id,
                user_id: c.user_id,
                author_name,
                body: c.body,
                created_at: c.created_at,
            }
        })
        .collect())
}
