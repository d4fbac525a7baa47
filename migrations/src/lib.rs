//! Herald's schema, one migration per file, for SQLite and PostgreSQL alike.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

/// Runs raw SQL statements in order: what the schema builder cannot say (triggers, generated
/// columns, partial indexes, dropping constraints).
pub(crate) async fn execute_all(
    manager: &SchemaManager<'_>,
    statements: &[&str],
) -> Result<(), DbErr> {
    for statement in statements {
        manager
            .get_connection()
            .execute_unprepared(statement)
            .await?;
    }
    Ok(())
}

mod m20261126_000001_create_key_material;
mod m20261126_000002_create_users;
mod m20261126_000003_create_identities;
mod m20261126_000004_create_sessions;
mod m20261126_000005_create_throttle_events;
mod m20261126_000006_create_topics;
mod m20261126_000007_create_devices;
mod m20261126_000008_create_subscriptions;
mod m20261126_000009_create_alerts;
mod m20261126_000010_create_sources;
mod m20261126_000011_create_stories;
mod m20261126_000012_create_articles;
mod m20261126_000013_create_story_breaking_events;
mod m20261126_000020_create_alert_batches;
mod m20261126_000021_fanout_counters;
mod m20261126_000030_create_article_topics;
mod m20261126_000031_create_article_search;
mod m20261126_000032_create_comments;
mod m20261126_000033_index_articles_story_source;
mod m20261127_000040_fanout_writes_without_row_locks;
mod m20261207_000050_create_websub_and_source_health;
mod m20261207_000051_create_delivery_retries;
mod m20261208_000310_alert_versions_and_schedules;
mod m20261208_000410_article_title_derived;
mod m20261208_000411_create_websub_departures;

/// Every migration Herald knows, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_key_material::Migration),
            Box::new(m20261126_000002_create_users::Migration),
            Box::new(m20261126_000003_create_identities::Migration),
            Box::new(m20261126_000004_create_sessions::Migration),
            Box::new(m20261126_000005_create_throttle_events::Migration),
            Box::new(m20261126_000006_create_topics::Migration),
            Box::new(m20261126_000007_create_devices::Migration),
            Box::new(m20261126_000008_create_subscriptions::Migration),
            Box::new(m20261126_000009_create_alerts::Migration),
            Box::new(m20261126_000010_create_sources::Migration),
            Box::new(m20261126_000011_create_stories::Migration),
            Box::new(m20261126_000012_create_articles::Migration),
            Box::new(m20261126_000013_create_story_breaking_events::Migration),
            Box::new(m20261126_000020_create_alert_batches::Migration),
            Box::new(m20261126_000021_fanout_counters::Migration),
            Box::new(m20261126_000030_create_article_topics::Migration),
            Box::new(m20261126_000031_create_article_search::Migration),
            Box::new(m20261126_000032_create_comments::Migration),
            Box::new(m20261126_000033_index_articles_story_source::Migration),
            Box::new(m20261127_000040_fanout_writes_without_row_locks::Migration),
            Box::new(m20261207_000050_create_websub_and_source_health::Migration),
            Box::new(m20261207_000051_create_delivery_retries::Migration),
            Box::new(m20261208_000310_alert_versions_and_schedules::Migration),
            Box::new(m20261208_000410_article_title_derived::Migration),
            Box::new(m20261208_000411_create_websub_departures::Migration),
        ]
    }
}
