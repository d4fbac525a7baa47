//! Publishers' feeds, with their polling state, lease and health.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sources::Table)
                    .if_not_exists()
                    .col(uuid(Sources::Id).primary_key())
                    .col(string_len(Sources::Name, 200))
                    .col(string_len(Sources::FeedUrl, 2048).unique_key())
                    .col(string_len_null(Sources::SiteUrl, 2048))
                    .col(json(Sources::Topics))
                    .col(string_len_null(Sources::Language, 35))
                    .col(boolean(Sources::Breaking))
                    .col(integer_null(Sources::PollIntervalSeconds))
                    .col(string_len_null(Sources::Etag, 1024))
                    .col(string_len_null(Sources::LastModified, 128))
                    .col(timestamp_with_time_zone(Sources::NextFetchAt))
                    .col(string_len_null(Sources::LeaseOwner, 128))
                    .col(timestamp_with_time_zone_null(Sources::LeaseExpiresAt))
                    .col(timestamp_with_time_zone_null(Sources::LastFetchAt))
                    .col(integer_null(Sources::LastStatus))
                    .col(integer(Sources::ErrorCount))
                    .col(text_null(Sources::LastError))
                    .col(timestamp_with_time_zone(Sources::CreatedAt))
                    .col(timestamp_with_time_zone(Sources::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The scheduler claims the feeds that are due, earliest first.
        manager
            .create_index(
                Index::create()
                    .name("ix_sources_next_fetch_at")
                    .table(Sources::Table)
                    .col(Sources::NextFetchAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sources::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Sources {
    Table,
    Id,
    Name,
    FeedUrl,
    SiteUrl,
    Topics,
    Language,
    Breaking,
    PollIntervalSeconds,
    Etag,
    LastModified,
    NextFetchAt,
    LeaseOwner,
    LeaseExpiresAt,
    LastFetchAt,
    LastStatus,
    ErrorCount,
    LastError,
    CreatedAt,
    UpdatedAt,
}
