//! What readers read: article lists (by topic, source, time, full-text search or the topics a
//! reader follows), an article's related coverage, and stories — each page a keyset range.
//!
//! Lists are newest first. A search ranks articles whose headline holds every word above
//! those that match only in the summary, then newest first; the rank is part of the key, so
//! pages of a search never repeat or skip an article either. Search matches whole words,
//! case-insensitively, without stemming, on both databases (FTS5 `unicode61` on SQLite, the
//! `simple` text-search configuration on PostgreSQL), so the same data gives the same answer.

use crate::StoreError;
use crate::articles::{Article, to_article};
use crate::entity::{article, story};
use crate::stories::{Story, to_story};
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, FromQueryResult, QueryResult, Statement,
    Value,
};
use std::collections::HashSet;
use uuid::Uuid;

/// Most words a search uses; the rest of the query is ignored.
pub const MAX_SEARCH_TERMS: usize = 8;

/// An article in a list, with its publisher's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedArticle {
    /// The article (`content_html` is left out of lists).
    pub article: Article,
    /// Its publisher's name.
    pub source_name: String,
    /// Where it stands in the list: the key of the next page starts after it.
    pub key: ArticleKey,
}

/// An article's place in a list: search rank (0 outside searches), then newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArticleKey {
    /// 1 when the headline holds every search word, else 0.
    pub rank: i32,
    /// Publication time.
    pub published_at: DateTime<Utc>,
    /// Article id: the tie-break.
    pub id: Uuid,
}

/// A full-text query: lower-case words, at most [`MAX_SEARCH_TERMS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<String>,
}

impl SearchQuery {
    /// The words of `q` (letters and digits; everything else separates words), or `None`
    /// when it has none.
    pub fn parse(q: &str) -> Option<Self> {
        let mut terms: Vec<String> = Vec::new();
        for word in q.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if word.is_empty() || terms.contains(&word) {
                continue;
            }
            terms.push(word.chars().take(64).collect());
            if terms.len() == MAX_SEARCH_TERMS {
                break;
            }
        }
        (!terms.is_empty()).then_some(Self { terms })
    }

    /// The words searched for.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    fn fts5(&self, column: Option<&str>) -> String {
        let quoted = self.terms.iter().map(|t| format!("\"{t}\""));
        match column {
            Some(column) => quoted
                .map(|t| format!("{column} : {t}"))
                .collect::<Vec<_>>()
                .join(" AND "),
            None => quoted.collect::<Vec<_>>().join(" AND "),
        }
    }

    fn tsquery(&self, weight: Option<&str>) -> String {
        self.terms
            .iter()
            .map(|t| match weight {
                Some(w) => format!("{t}:{w}"),
                None => t.clone(),
            })
            .collect::<Vec<_>>()
            .join(" & ")
    }
}

/// Which articles a list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArticleFilter {
    /// Articles in any of these topics; empty means every topic.
    pub topics: Vec<String>,
    /// When set and empty: no article at all (a reader who follows nothing).
    pub only_followed: bool,
    /// One publisher's articles.
    pub source_id: Option<Uuid>,
    /// Published at or after.
    pub since: Option<DateTime<Utc>>,
    /// Full-text search.
    pub search: Option<SearchQuery>,
}

/// A statement under construction, with placeholders in the backend's style.
struct Sql {
    backend: DatabaseBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    fn param(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_string(),
        }
    }

    fn params<T: Into<Value> + Clone>(&mut self, values: &[T]) -> String {
        values
            .iter()
            .map(|v| self.param(v.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// The columns of an article in a list (`content_html` left out) and its publisher's name.
const LIST_COLUMNS: &str = "a.id, a.source_id, a.dedupe_key, a.canonical_url, a.title, \
    a.title_derived, a.summary, NULL AS content_html, a.image_url, a.author, a.language, a.topics, a.story_id, \
    a.published_at, a.fetched_at, a.updated_at, s.name AS source_name";

/// One page of articles after `after`, at most `limit`.
pub async fn articles(
    db: &DatabaseConnection,
    filter: &ArticleFilter,
    after: Option<ArticleKey>,
    limit: u64,
) -> Result<Vec<ListedArticle>, StoreError> {
    if filter.only_followed && filter.topics.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let mut sql = Sql::new(backend);
    match &filter.search {
        None if filter.topics.len() == 1 => by_one_topic(&mut sql, filter, after, limit),
        None => newest(&mut sql, filter, after, limit),
        Some(search) => searched(&mut sql, filter, search, after, limit),
    }
    let rows = db.query_all_raw(sql.statement()).await?;
    rows.iter().map(listed).collect()
}

/// The hot path (`?topic=`): one range of the `(topic, published_at, article_id)` index.
fn by_one_topic(sql: &mut Sql, filter: &ArticleFilter, after: Option<ArticleKey>, limit: u64) {
    let topic = sql.param(filter.topics[0].clone());
    let mut text = format!(
        "SELECT {LIST_COLUMNS}, 0 AS rank FROM article_topics t \
         JOIN articles a ON a.id = t.article_id JOIN sources s ON s.id = a.source_id \
         WHERE t.topic = {topic}"
    );
    if let Some(source_id) = filter.source_id {
        text += &format!(" AND a.source_id = {}", sql.param(source_id));
    }
    if let Some(since) = filter.since {
        text += &format!(" AND t.published_at >= {}", sql.param(since));
    }
    if let Some(key) = after {
        let (at, id) = (sql.param(key.published_at), sql.param(key.id));
        text += &format!(" AND (t.published_at, t.article_id) < ({at}, {id})");
    }
    text += &format!(
        " ORDER BY t.published_at DESC, t.article_id DESC LIMIT {}",
        sql.param(limit_value(limit))
    );
    sql.text = text;
}

/// Every topic, or any of several (the reader's feed), newest first.
fn newest(sql: &mut Sql, filter: &ArticleFilter, after: Option<ArticleKey>, limit: u64) {
    let mut text = format!(
        "SELECT {LIST_COLUMNS}, 0 AS rank FROM articles a \
         JOIN sources s ON s.id = a.source_id WHERE 1 = 1"
    );
    text += &common_conditions(sql, filter);
    if let Some(key) = after {
        let (at, id) = (sql.param(key.published_at), sql.param(key.id));
        text += &format!(" AND (a.published_at, a.id) < ({at}, {id})");
    }
    text += &format!(
        " ORDER BY a.published_at DESC, a.id DESC LIMIT {}",
        sql.param(limit_value(limit))
    );
    sql.text = text;
}

fn searched(
    sql: &mut Sql,
    filter: &ArticleFilter,
    search: &SearchQuery,
    after: Option<ArticleKey>,
    limit: u64,
) {
    let inner = match sql.backend {
        DatabaseBackend::Postgres => {
            let title = sql.param(search.tsquery(Some("A")));
            let all = sql.param(search.tsquery(None));
            format!(
                "SELECT {LIST_COLUMNS}, \
                 CASE WHEN a.search @@ to_tsquery('simple', {title}) THEN 1 ELSE 0 END AS rank \
                 FROM articles a JOIN sources s ON s.id = a.source_id \
                 WHERE a.search @@ to_tsquery('simple', {all})"
            )
        }
        _ => {
            let title = sql.param(search.fts5(Some("title")));
            let all = sql.param(search.fts5(None));
            format!(
                "SELECT {LIST_COLUMNS}, \
                 CASE WHEN article_search.rowid IN \
                   (SELECT rowid FROM article_search WHERE article_search MATCH {title}) \
                 THEN 1 ELSE 0 END AS rank \
                 FROM article_search \
                 JOIN article_search_rows r ON r.id = article_search.rowid \
                 JOIN articles a ON a.id = r.article_id JOIN sources s ON s.id = a.source_id \
                 WHERE article_search MATCH {all}"
            )
        }
    };
    let conditions = common_conditions(sql, filter);
    let mut text = format!("SELECT * FROM ({inner}{conditions}) x");
    if let Some(key) = after {
        let rank = sql.param(key.rank);
        let (at, id) = (sql.param(key.published_at), sql.param(key.id));
        text += &format!(" WHERE (x.rank, x.published_at, x.id) < ({rank}, {at}, {id})");
    }
    text += &format!(
        " ORDER BY x.rank DESC, x.published_at DESC, x.id DESC LIMIT {}",
        sql.param(limit_value(limit))
    );
    sql.text = text;
}

/// Topic, source and time conditions on `a`, each starting with ` AND`.
fn common_conditions(sql: &mut Sql, filter: &ArticleFilter) -> String {
    let mut text = String::new();
    if !filter.topics.is_empty() {
        let topics = sql.params(&filter.topics);
        text += &format!(
            " AND EXISTS (SELECT 1 FROM article_topics t \
             WHERE t.article_id = a.id AND t.topic IN ({topics}))"
        );
    }
    if let Some(source_id) = filter.source_id {
        text += &format!(" AND a.source_id = {}", sql.param(source_id));
    }
    if let Some(since) = filter.since {
        text += &format!(" AND a.published_at >= {}", sql.param(since));
    }
    text
}

fn limit_value(limit: u64) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn listed(row: &QueryResult) -> Result<ListedArticle, StoreError> {
    let model = article::Model::from_query_result(row, "")?;
    let source_name: String = row.try_get("", "source_name")?;
    let rank: i32 = row.try_get("", "rank")?;
    let article = to_article(model);
    let key = ArticleKey {
        rank,
        published_at: article.published_at,
        id: article.id,
    };
    Ok(ListedArticle {
        article,
        source_name,
        key,
    })
}

/// Every article of a story with its publisher's name, newest first (at most `limit`).
pub async fn story_articles(
    db: &DatabaseConnection,
    story_id: Uuid,
    limit: u64,
) -> Result<Vec<ListedArticle>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    let story = sql.param(story_id);
    let limit = sql.param(limit_value(limit));
    sql.text = format!(
        "SELECT {LIST_COLUMNS}, 0 AS rank FROM articles a JOIN sources s ON s.id = a.source_id \
         WHERE a.story_id = {story} ORDER BY a.published_at DESC, a.id DESC LIMIT {limit}"
    );
    let rows = db.query_all_raw(sql.statement()).await?;
    rows.iter().map(listed).collect()
}

/// Most articles "Related Articles" shows.
pub const MAX_RELATED: usize = 10;

/// An article's related coverage: the other articles of its story — first the newest
/// article of each other publisher, newest first, then the rest, newest first — at most
/// [`MAX_RELATED`].
pub async fn related(
    db: &DatabaseConnection,
    article: &Article,
) -> Result<Vec<ListedArticle>, StoreError> {
    let Some(story_id) = article.story_id else {
        return Ok(Vec::new());
    };
    let members = story_articles(db, story_id, 500).await?;
    Ok(order_related(article, members))
}

fn order_related(article: &Article, members: Vec<ListedArticle>) -> Vec<ListedArticle> {
    let mut seen_sources = HashSet::from([article.source_id]);
    let (mut first, mut rest): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for member in members.into_iter().filter(|m| m.article.id != article.id) {
        if seen_sources.insert(member.article.source_id) {
            first.push(member);
        } else {
            rest.push(member);
        }
    }
    first.extend(rest);
    first.truncate(MAX_RELATED);
    first
}

/// A story's place in a list: most recently updated first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoryKey {
    /// When an article was last added.
    pub updated_at: DateTime<Utc>,
    /// Story id: the tie-break.
    pub id: Uuid,
}

/// One page of stories after `after`, most recently updated first; `topic` keeps stories
/// with an article in that topic.
pub async fn stories(
    db: &DatabaseConnection,
    topic: Option<&str>,
    after: Option<StoryKey>,
    limit: u64,
) -> Result<Vec<Story>, StoreError> {
    let mut sql = Sql::new(db.get_database_backend());
    let mut text = "SELECT st.* FROM stories st WHERE 1 = 1".to_string();
    if let Some(topic) = topic {
        text += &format!(
            " AND EXISTS (SELECT 1 FROM articles a JOIN article_topics t \
             ON t.article_id = a.id WHERE a.story_id = st.id AND t.topic = {})",
            sql.param(topic.to_string())
        );
    }
    if let Some(key) = after {
        let (at, id) = (sql.param(key.updated_at), sql.param(key.id));
        text += &format!(" AND (st.updated_at, st.id) < ({at}, {id})");
    }
    text += &format!(
        " ORDER BY st.updated_at DESC, st.id DESC LIMIT {}",
        sql.param(limit_value(limit))
    );
    sql.text = text;
    let rows = db.query_all_raw(sql.statement()).await?;
    rows.iter()
        .map(|row| Ok(to_story(story::Model::from_query_result(row, "")?)))
        .collect()
}

/// A story and its articles, newest first (at most 1,000): the story page.
pub async fn story_page(
    db: &DatabaseConnection,
    story_id: Uuid,
) -> Result<(Story, Vec<ListedArticle>), StoreError> {
    let story = crate::stories::get(db, story_id).await?;
    let articles = story_articles(db, story_id, 1000).await?;
    Ok((story, articles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_letters_and_digits_lowercased() {
        let q = SearchQuery::parse("  Modi's G20 \"speech\" -- modi OR (x)").unwrap();
        assert_eq!(q.terms(), ["modi", "s", "g20", "speech", "or", "x"]);
        assert_eq!(
            q.fts5(None),
            r#""modi" AND "s" AND "g20" AND "speech" AND "or" AND "x""#
        );
        assert_eq!(
            q.tsquery(Some("A")),
            "modi:A & s:A & g20:A & speech:A & or:A & x:A"
        );
        assert!(SearchQuery::parse(" -- !! ").is_none());
        let many = SearchQuery::parse("a b c d e f g h i j").unwrap();
        assert_eq!(many.terms().len(), MAX_SEARCH_TERMS);
    }
}
