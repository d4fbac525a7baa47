//! Topics readers follow, synced from `config/sources.toml`.

use crate::StoreError;
use crate::entity::topic;
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

/// A topic and its breaking rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// URL-safe identifier, e.g. `world`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// One line about it.
    pub description: String,
    /// Words that tag an article with this topic.
    pub keywords: Vec<String>,
    /// Distinct publishers a story needs within `window_minutes` to be breaking.
    pub min_sources: u32,
    /// The breaking rule's window.
    pub window_minutes: u32,
}

fn to_topic(m: topic::Model) -> Topic {
    Topic {
        slug: m.slug,
        name: m.name,
        description: m.description,
        keywords: serde_json::from_value(m.keywords).unwrap_or_default(),
        min_sources: u32::try_from(m.min_sources).unwrap_or(0),
        window_minutes: u32::try_from(m.window_minutes).unwrap_or(0),
    }
}

/// Inserts new topics and updates existing ones; topics not listed are kept.
pub async fn sync(db: &DatabaseConnection, topics: &[Topic]) -> Result<(), StoreError> {
    let now = Utc::now();
    for t in topics {
        topic::Entity::insert(topic::ActiveModel {
            slug: Set(t.slug.clone()),
            name: Set(t.name.clone()),
            description: Set(t.description.clone()),
            keywords: Set(serde_json::json!(t.keywords)),
            min_sources: Set(i32::try_from(t.min_sources).unwrap_or(i32::MAX)),
            window_minutes: Set(i32::try_from(t.window_minutes).unwrap_or(i32::MAX)),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(topic::Column::Slug)
                .update_columns([
                    topic::Column::Name,
                    topic::Column::Description,
                    topic::Column::Keywords,
                    topic::Column::MinSources,
                    topic::Column::WindowMinutes,
                    topic::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
    }
    Ok(())
}

/// Every topic, by name.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<Topic>, StoreError> {
    Ok(topic::Entity::find()
        .order_by_asc(topic::Column::Name)
        .all(db)
        .await?
        .into_iter()
        .map(to_topic)
        .collect())
}

/// The slugs among `slugs` that name no topic.
pub async fn unknown(db: &DatabaseConnection, slugs: &[String]) -> Result<Vec<String>, StoreError> {
    let known: Vec<String> = topic::Entity::find()
        .filter(topic::Column::Slug.is_in(slugs.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.slug)
        .collect();
    Ok(slugs
        .iter()
        .filter(|s| !known.contains(s))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    fn topic(slug: &str, name: &str) -> Topic {
        Topic {
            slug: slug.into(),
            name: name.into(),
            description: String::new(),
            keywords: vec!["k".into()],
            min_sources: 3,
            window_minutes: 60,
        }
    }

    #[tokio::test]
    async fn sync_inserts_then_updates() {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        sync(&db, &[topic("world", "World"), topic("india", "India")])
            .await
            .unwrap();
        sync(&db, &[topic("world", "The World")]).await.unwrap();
        let all = list(&db).await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].name, "The World");
        assert_eq!(all[1].keywords, vec!["k".to_string()]);
        let missing = unknown(&db, &["world".into(), "mars".into()])
            .await
            .unwrap();
        assert_eq!(missing, vec!["mars".to_string()]);
    }
}
