//! Articles: feed items after normalisation, one row per item however many feeds carry it.

use crate::m20261126_000010_create_sources::Sources;
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
                    .table(Articles::Table)
                    .if_not_exists()
                    .col(uuid(Articles::Id).primary_key())
                    .col(uuid(Articles::SourceId))
                    .col(string_len(Articles::DedupeKey, 2100))
                    .col(string_len_null(Articles::CanonicalUrl, 2048))
                    .col(text(Articles::Title))
                    .col(text_null(Articles::Summary))
                    .col(text_null(Articles::ContentHtml))
                    .col(string_len_null(Articles::ImageUrl, 2048))
                    .col(string_len_null(Articles::Author, 500))
                    .col(string_len_null(Articles::Language, 35))
                    .col(json(Articles::Topics))
                    .col(uuid_null(Articles::StoryId))
                    .col(timestamp_with_time_zone(Articles::PublishedAt))
                    .col(timestamp_with_time_zone(Articles::FetchedAt))
                    .col(timestamp_with_time_zone(Articles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_articles_source")
                            .from(Articles::Table, Articles::SourceId)
                            .to(Sources::Table, Sources::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_articles_story")
                            .from(Articles::Table, Articles::StoryId)
                            .to(Stories::Table, Stories::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // A re-fetched item is found by its source and dedupe key.
        manager
            .create_index(
                Index::create()
                    .name("ux_articles_source_dedupe_key")
                    .table(Articles::Table)
                    .col(Articles::SourceId)
                    .col(Articles::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The same URL from two feeds is one article (NULLs are distinct).
        manager
            .create_index(
                Index::create()
                    .name("ux_articles_canonical_url")
                    .table(Articles::Table)
                    .col(Articles::CanonicalUrl)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_articles_story")
                    .table(Articles::Table)
                    .col(Articles::StoryId)
                    .to_owned(),
            )
            .await?;
        // Newest-first lists and the clusterer's restart window.
        manager
            .create_index(
                Index::create()
                    .name("ix_articles_published_at")
                    .table(Articles::Table)
                    .col(Articles::PublishedAt)
                    .col(Articles::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Articles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Articles {
    Table,
    Id,
    SourceId,
    DedupeKey,
    CanonicalUrl,
    Title,
    Summary,
    ContentHtml,
    ImageUrl,
    Author,
    Language,
    Topics,
    StoryId,
    PublishedAt,
    FetchedAt,
    UpdatedAt,
}
