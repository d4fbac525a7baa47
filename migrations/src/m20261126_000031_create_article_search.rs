//! Full-text search over article titles and summaries: an FTS5 table kept in step by
//! triggers on SQLite, a generated `tsvector` column with a GIN index on PostgreSQL.
//!
//! Both sides use word tokens without stemming or stop words (`unicode61`, and the
//! `simple` configuration) so one query finds the same articles on either database.
//! Titles are weight `A` on PostgreSQL and the `title` column on SQLite, which is how a
//! search ranks headline matches first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// SQLite: FTS5 rows are keyed by `article_search_rows.id`, an `INTEGER PRIMARY KEY` that
/// `VACUUM` never renumbers (an article's own rowid may change, its UUID is not an integer).
const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE IF NOT EXISTS article_search USING fts5(\
        title, summary, tokenize = 'unicode61 remove_diacritics 0')",
    "CREATE TABLE IF NOT EXISTS article_search_rows (\
        id INTEGER PRIMARY KEY, article_id BLOB NOT NULL UNIQUE)",
    "CREATE TRIGGER IF NOT EXISTS articles_search_insert AFTER INSERT ON articles BEGIN \
        INSERT INTO article_search_rows (article_id) VALUES (new.id); \
        INSERT INTO article_search (rowid, title, summary) \
            SELECT id, new.title, coalesce(new.summary, '') FROM article_search_rows \
            WHERE article_id = new.id; \
     END",
    "CREATE TRIGGER IF NOT EXISTS articles_search_update AFTER UPDATE OF title, summary \
     ON articles BEGIN \
        DELETE FROM article_search WHERE rowid = \
            (SELECT id FROM article_search_rows WHERE article_id = old.id); \
        INSERT INTO article_search (rowid, title, summary) \
            SELECT id, new.title, coalesce(new.summary, '') FROM article_search_rows \
            WHERE article_id = new.id; \
     END",
    "CREATE TRIGGER IF NOT EXISTS articles_search_delete AFTER DELETE ON articles BEGIN \
        DELETE FROM article_search WHERE rowid = \
            (SELECT id FROM article_search_rows WHERE article_id = old.id); \
        DELETE FROM article_search_rows WHERE article_id = old.id; \
     END",
    // Articles stored before search existed.
    "INSERT OR IGNORE INTO article_search_rows (article_id) SELECT id FROM articles",
    "INSERT INTO article_search (rowid, title, summary) \
        SELECT r.id, a.title, coalesce(a.summary, '') FROM articles a \
        JOIN article_search_rows r ON r.article_id = a.id \
        WHERE r.id NOT IN (SELECT rowid FROM article_search)",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS articles_search_insert",
    "DROP TRIGGER IF EXISTS articles_search_update",
    "DROP TRIGGER IF EXISTS articles_search_delete",
    "DROP TABLE IF EXISTS article_search_rows",
    "DROP TABLE IF EXISTS article_search",
];

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE articles ADD COLUMN IF NOT EXISTS search tsvector GENERATED ALWAYS AS (\
        setweight(to_tsvector('simple'::regconfig, title), 'A') || \
        setweight(to_tsvector('simple'::regconfig, coalesce(summary, '')), 'B')) STORED",
    "CREATE INDEX IF NOT EXISTS ix_articles_search ON articles USING GIN (search)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS ix_articles_search",
    "ALTER TABLE articles DROP COLUMN IF EXISTS search",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => crate::execute_all(manager, POSTGRES_UP).await,
            _ => crate::execute_all(manager, SQLITE_UP).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => crate::execute_all(manager, POSTGRES_DOWN).await,
            _ => crate::execute_all(manager, SQLITE_DOWN).await,
        }
    }
}
