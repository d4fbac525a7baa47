//! The topics each reader follows.

use crate::StoreError;
use crate::entity::subscription;
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

/// The slugs the user follows, sorted.
pub async fn list(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<String>, StoreError> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::UserId.eq(user_id))
        .order_by_asc(subscription::Column::TopicSlug)
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.topic_slug)
        .collect())
}

/// Follows a topic; following it again changes nothing.
pub async fn add(db: &impl ConnectionTrait, user_id: Uuid, slug: &str) -> Result<(), StoreError> {
    subscription::Entity::insert(subscription::ActiveModel {
        user_id: Set(user_id),
        topic_slug: Set(slug.to_string()),
        created_at: Set(Utc::now()),
    })
    .on_conflict_do_nothing_on([
        subscription::Column::UserId,
        subscription::Column::TopicSlug,
    ])
    .exec(db)
    .await?;
    Ok(())
}

/// Stops following a topic; returns whether it was followed.
pub async fn remove(
    db: &DatabaseConnection,
    user_id: Uuid,
    slug: &str,
) -> Result<bool, StoreError> {
    let deleted = subscription::Entity::delete_many()
        .filter(subscription::Column::UserId.eq(user_id))
        .filter(subscription::Column::TopicSlug.eq(slug))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// Replaces the followed topics with `slugs`, in one transaction.
pub async fn replace(
    db: &DatabaseConnection,
    user_id: Uuid,
    slugs: &[String],
) -> Result<Vec<String>, StoreError> {
    let txn = crate::begin_write(db).await?;
    let replaced = async {
        subscription::Entity::delete_many()
            .filter(subscription::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        for slug in slugs {
            add(&txn, user_id, slug).await?;
        }
        list(&txn, user_id).await
    }
    .await;
    match replaced {
        Ok(list) => {
            txn.commit().await?;
            Ok(list)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// True when the user follows any of `slugs`.
pub async fn follows_any(
    db: &DatabaseConnection,
    user_id: Uuid,
    slugs: &[String],
) -> Result<bool, StoreError> {
    Ok(subscription::Entity::find()
        .filter(subscription::Column::UserId.eq(user_id))
        .filter(subscription::Column::TopicSlug.is_in(slugs.iter().cloned()))
        .one(db)
        .await?
        .is_some())
}
