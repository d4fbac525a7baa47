//! One row per (article, topic): the index behind `GET /v1/articles?topic=` and the reader's
//! feed, ordered like the list (newest first) so a page is one index range.

use crate::m20261126_000012_create_articles::Articles;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ArticleTopics::Table)
                    .if_not_exists()
                    .col(uuid(ArticleTopics::ArticleId))
                    .col(string_len(ArticleTopics::Topic, 64))
                    .col(timestamp_with_time_zone(ArticleTopics::PublishedAt))
                    .primary_key(
                        Index::create()
                            .col(ArticleTopics::ArticleId)
                            .col(ArticleTopics::Topic),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_article_topics_article")
                            .from(ArticleTopics::Table, ArticleTopics::ArticleId)
                            .to(Articles::Table, Articles::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_article_topics_topic_published")
                    .table(ArticleTopics::Table)
                    .col(ArticleTopics::Topic)
                    .col(ArticleTopics::PublishedAt)
                    .col(ArticleTopics::ArticleId)
                    .to_owned(),
            )
            .await?;
        // Articles stored before this table existed.
        let backfill = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "INSERT INTO article_topics (article_id, topic, published_at) \
                 SELECT DISTINCT a.id, t.value, a.published_at \
                 FROM articles a, json_array_elements_text(a.topics) AS t(value) \
                 ON CONFLICT DO NOTHING"
            }
            _ => {
                "INSERT OR IGNORE INTO article_topics (article_id, topic, published_at) \
                 SELECT a.id, t.value, a.published_at FROM articles a, json_each(a.topics) AS t"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ArticleTopics::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum ArticleTopics {
    Table,
    ArticleId,
    Topic,
    PublishedAt,
}
