//! Stories: the same event told by several publishers.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stories::Table)
                    .if_not_exists()
                    .col(uuid(Stories::Id).primary_key())
                    .col(text(Stories::Headline))
                    .col(json(Stories::Topics))
                    .col(integer(Stories::ArticleCount))
                    .col(integer(Stories::SourceCount))
                    .col(timestamp_with_time_zone(Stories::FirstSeenAt))
                    .col(timestamp_with_time_zone(Stories::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Stories::BreakingAt))
                    .to_owned(),
            )
            .await?;
        // Story lists are newest-updated first.
        manager
            .create_index(
                Index::create()
                    .name("ix_stories_updated_at")
                    .table(Stories::Table)
                    .col(Stories::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Stories::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Stories {
    Table,
    Id,
    Headline,
    Topics,
    ArticleCount,
    SourceCount,
    FirstSeenAt,
    UpdatedAt,
    BreakingAt,
}
