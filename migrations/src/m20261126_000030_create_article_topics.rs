//! One row per (article, topic): the index behind `GET /v1/articles?topic=` and the reader's
//! feed, ordered like the list (newest first) so a page is one index range. Database
//! triggers keep it in step with `articles.topics`.

use crate::m20261126_000012_create_articles::Articles;
use sea_orm_migration::sea_orm::DbBackend;
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
        // Triggers keep the rows in step with `articles.topics`, whoever writes articles
        // (ingestion, a bulk load, a manual fix); then articles stored before this table.
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &[
                "CREATE OR REPLACE FUNCTION herald_article_topics_sync() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ \
                 BEGIN \
                   IF TG_OP = 'UPDATE' THEN \
                     DELETE FROM article_topics WHERE article_id = OLD.id; \
                   END IF; \
                   INSERT INTO article_topics (article_id, topic, published_at) \
                     SELECT DISTINCT NEW.id, t.value, NEW.published_at \
                     FROM json_array_elements_text(NEW.topics) AS t(value) \
                     ON CONFLICT DO NOTHING; \
                   RETURN NEW; \
                 END $$",
                "CREATE TRIGGER articles_topics_sync \
                 AFTER INSERT OR UPDATE OF topics, published_at ON articles \
                 FOR EACH ROW EXECUTE FUNCTION herald_article_topics_sync()",
                "INSERT INTO article_topics (article_id, topic, published_at) \
                 SELECT DISTINCT a.id, t.value, a.published_at \
                 FROM articles a, json_array_elements_text(a.topics) AS t(value) \
                 ON CONFLICT DO NOTHING",
            ],
            _ => &[
                "CREATE TRIGGER IF NOT EXISTS articles_topics_insert AFTER INSERT ON articles \
                 BEGIN \
                   INSERT OR IGNORE INTO article_topics (article_id, topic, published_at) \
                   SELECT new.id, t.value, new.published_at FROM json_each(new.topics) AS t; \
                 END",
                "CREATE TRIGGER IF NOT EXISTS articles_topics_update \
                 AFTER UPDATE OF topics, published_at ON articles \
                 BEGIN \
                   DELETE FROM article_topics WHERE article_id = old.id; \
                   INSERT OR IGNORE INTO article_topics (article_id, topic, published_at) \
                   SELECT new.id, t.value, new.published_at FROM json_each(new.topics) AS t; \
                 END",
                "INSERT OR IGNORE INTO article_topics (article_id, topic, published_at) \
                 SELECT a.id, t.value, a.published_at FROM articles a, json_each(a.topics) AS t",
            ],
        };
        crate::execute_all(manager, statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &[
                "DROP TRIGGER IF EXISTS articles_topics_sync ON articles",
                "DROP FUNCTION IF EXISTS herald_article_topics_sync()",
            ],
            _ => &[
                "DROP TRIGGER IF EXISTS articles_topics_insert",
                "DROP TRIGGER IF EXISTS articles_topics_update",
            ],
        };
        crate::execute_all(manager, statements).await?;
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
