//! "Story became breaking" events, recorded by ingestion and consumed by the notifier.

use crate::m20261126_000011_create_stories::Stories;
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StoryBreakingEvents::Table)
                    .if_not_exists()
                    .col(uuid(StoryBreakingEvents::Id).primary_key())
                    .col(uuid(StoryBreakingEvents::StoryId))
                    .col(string_len(StoryBreakingEvents::Topic, 64))
                    .col(timestamp_with_time_zone(StoryBreakingEvents::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        StoryBreakingEvents::ConsumedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_story_breaking_events_story")
                            .from(StoryBreakingEvents::Table, StoryBreakingEvents::StoryId)
                            .to(Stories::Table, Stories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A story alerts at most once per topic.
        manager
            .create_index(
                Index::create()
                    .name("ux_story_breaking_events_story_topic")
                    .table(StoryBreakingEvents::Table)
                    .col(StoryBreakingEvents::StoryId)
                    .col(StoryBreakingEvents::Topic)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The notifier walks the unconsumed events, oldest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_story_breaking_events_pending")
                    .table(StoryBreakingEvents::Table)
                    .col(StoryBreakingEvents::ConsumedAt)
                    .col(StoryBreakingEvents::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StoryBreakingEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum StoryBreakingEvents {
    Table,
    Id,
    StoryId,
    Topic,
    CreatedAt,
    ConsumedAt,
}
