//! Articles by (story, source): whether a new article brings a new publisher to its story
//! is one index probe, however many articles the story has.

use crate::m20261126_000012_create_articles::Articles;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("ix_articles_story_source")
                    .table(Articles::Table)
                    .col(Articles::StoryId)
                    .col(Articles::SourceId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_articles_story_source")
                    .table(Articles::Table)
                    .to_owned(),
            )
            .await
    }
}
