//! One fetched feed body in, stored articles and stories out: parse → normalise → tag topics
//! → cluster → store (deduplicated) → breaking check.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use herald_store::articles::{self, NewArticle, Refetched};
use herald_store::source_health::EntryCounts;
use herald_store::sources::Source;
use herald_store::stories::{self, Added, BreakingEvent};
use herald_store::topics::Topic;
use herald_store::{Db, StoreError};
use url::Url;
use uuid::Uuid;

use crate::cluster::{ClusterConfig, ClusterDoc, StoryClusterer};
use crate::normalize::{NormalizedArticle, normalize_item};
use crate::parse::{ParseError, parse_feed};
use crate::topics::TopicMatcher;

/// How far back the clusterer is rebuilt from stored articles on start.
pub const RESTORE_WINDOW_HOURS: i64 = 48;

/// A new item from a `breaking = true` source is breaking when published this recently.
const BREAKING_SOURCE_RECENCY_MINUTES: i64 = 60;

/// Why a feed body could not be ingested.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The body is not a feed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The parsing task died.
    #[error("feed parsing task failed: {0}")]
    Task(String),
}

impl IngestReport {
    /// The entry counts a source's health adds up.
    pub fn counts(&self, pushed: bool) -> EntryCounts {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        EntryCounts {
            seen: wide(self.items),
            ingested: wide(self.inserted),
            updated: wide(self.updated),
            duplicates: wide(self.unchanged),
            refused_no_title_or_link: wide(self.skipped),
            derived_titles: wide(self.derived_titles),
            pushed: u64::from(pushed),
        }
    }
}

/// What ingesting one feed body did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// Items in the feed.
    pub items: usize,
    /// Items that could not be normalised (neither title nor link), refused.
    pub skipped: usize,
    /// Why the last refused item was refused, naming it.
    pub last_refusal: Option<String>,
    /// New articles whose headline was made from their summary or link.
    pub derived_titles: usize,
    /// New articles stored.
    pub inserted: usize,
    /// Known articles whose title, summary, body or image changed.
    pub updated: usize,
    /// Known articles, unchanged, or another feed's article with the same URL.
    pub unchanged: usize,
    /// Breaking events recorded.
    pub breaking: Vec<BreakingEvent>,
    /// Publication times of the feed's items (for the adaptive poll interval).
    pub item_times: Vec<DateTime<Utc>>,
    /// The feed's RSS `<ttl>` in minutes.
    pub ttl_minutes: Option<u32>,
}

/// A feed body parsed and normalised, ready for [`Pipeline::store`].
#[derive(Debug)]
pub struct Prepared {
    articles: Vec<NormalizedArticle>,
    items: usize,
    ttl_minutes: Option<u32>,
    last_refusal: Option<String>,
    hubs: Vec<Url>,
    self_url: Option<Url>,
}

impl Prepared {
    /// The WebSub hubs the feed advertises.
    pub fn hubs(&self) -> &[Url] {
        &self.hubs
    }

    /// The feed's own URL as it states it (`rel="self"`).
    pub fn self_url(&self) -> Option<&Url> {
        self.self_url.as_ref()
    }
}

/// Parses and normalises one fetched body on a blocking thread: CPU work that needs no shared
/// state, so fetches parse in parallel. A malformed feed is an error for that source only.
pub async fn prepare(
    body: Bytes,
    content_type: Option<String>,
    feed_url: &Url,
    fetched_at: DateTime<Utc>,
) -> Result<Prepared, PipelineError> {
    let base = feed_url.clone();
    tokio::task::spawn_blocking(move || {
        let parsed = parse_feed(&body, content_type.as_deref(), &base, fetched_at)?;
        let base = parsed.site_url.clone().unwrap_or(base);
        let mut articles = Vec::with_capacity(parsed.items.len());
        let mut last_refusal = None;
        for (index, item) in parsed.items.iter().enumerate() {
            match normalize_item(item, &base, fetched_at) {
                Ok(article) => articles.push(article),
                Err(err) => {
                    let which = item
                        .guid
                        .as_deref()
                        .map_or_else(|| format!("entry {}", index + 1), |g| format!("entry {g}"));
                    last_refusal = Some(format!("{which}: {err}"));
                }
            }
        }
        Ok(Prepared {
            articles,
            items: parsed.items.len(),
            ttl_minutes: parsed.ttl_minutes,
            last_refusal,
            hubs: parsed.hubs,
            self_url: parsed.self_url,
        })
    })
    .await
    .map_err(|e| PipelineError::Task(e.to_string()))?
}

/// The ingestion pipeline: topic matcher and story clusterer, shared by one process's fetches.
#[derive(Debug)]
pub struct Pipeline {
    matcher: TopicMatcher,
    clusterer: StoryClusterer,
}

impl Pipeline {
    /// A pipeline tagging with `topics`' keywords and clustering with `cluster`.
    pub fn new(topics: &[Topic], cluster: ClusterConfig) -> Self {
        let matcher =
            TopicMatcher::new(topics.iter().map(|t| (t.slug.clone(), t.keywords.clone())));
        Self {
            matcher,
            clusterer: StoryClusterer::new(cluster),
        }
    }

    /// Rebuilds the clusterer from the articles published in the last 48 hours before `now`;
    /// returns how many stories it holds.
    pub async fn restore(&mut self, db: &Db, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let recent =
            articles::published_since(db, now - Duration::hours(RESTORE_WINDOW_HOURS)).await?;
        let mut order: Vec<Uuid> = Vec::new();
        let mut by_story: HashMap<Uuid, Vec<ClusterDoc>> = HashMap::new();
        for article in recent {
            let Some(story) = article.story_id else {
                continue;
            };
            let docs = by_story.entry(story).or_insert_with(|| {
                order.push(story);
                Vec::new()
            });
            docs.push(ClusterDoc {
                id: article.id.to_string(),
                title: article.title,
                summary: article.summary,
                publisher: Some(article.source_id.to_string()),
                published_at: article.published_at,
            });
        }
        for story in order {
            if let Some(docs) = by_story.get(&story) {
                self.clusterer.restore(story, docs);
            }
        }
        Ok(self.clusterer.active_stories())
    }

    /// Ingests one fetched body of `source`: a malformed feed is an error for that source only;
    /// items that cannot be normalised are skipped. The same as [`prepare`] then
    /// [`Pipeline::store`]; a caller sharing one pipeline between fetches should call those two
    /// itself, so that parsing runs outside its lock.
    pub async fn ingest(
        &mut self,
        db: &Db,
        source: &Source,
        body: Bytes,
        content_type: Option<String>,
        feed_url: &Url,
        fetched_at: DateTime<Utc>,
    ) -> Result<IngestReport, PipelineError> {
        let prepared = prepare(body, content_type, feed_url, fetched_at).await?;
        Ok(self.store(db, source, prepared, fetched_at).await?)
    }

    /// Tags, clusters and stores a [`prepare`]d feed body of `source`.
    pub async fn store(
        &mut self,
        db: &Db,
        source: &Source,
        prepared: Prepared,
        fetched_at: DateTime<Utc>,
    ) -> Result<IngestReport, StoreError> {
        let Prepared {
            articles,
            items,
            ttl_minutes,
            last_refusal,
            ..
        } = prepared;
        let mut report = IngestReport {
            items,
            skipped: items.saturating_sub(articles.len()),
            last_refusal,
            ttl_minutes,
            ..IngestReport::default()
        };
        for article in articles {
            report.item_times.push(article.published_at);
            self.store_one(db, source, article, fetched_at, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn store_one(
        &mut self,
        db: &Db,
        source: &Source,
        article: NormalizedArticle,
        fetched_at: DateTime<Utc>,
        report: &mut IngestReport,
    ) -> Result<(), StoreError> {
        let mut topics = source.topics.clone();
        for slug in self
            .matcher
            .match_topics(&article.title, article.summary.as_deref())
        {
            if !topics.contains(&slug) {
                topics.push(slug);
            }
        }
        let new = NewArticle {
            id: Uuid::now_v7(),
            source_id: source.id,
            dedupe_key: article.dedupe_key,
            canonical_url: article.canonical_url.map(String::from),
            title: article.title,
            title_derived: article.title_derived,
            summary: article.summary,
            content_html: article.content_html,
            image_url: article.image_url.map(String::from),
            author: article.author,
            language: article.language.or_else(|| source.language.clone()),
            topics,
            published_at: article.published_at,
            fetched_at,
        };
        match articles::upsert_existing(db, &new).await? {
            Refetched::Updated(_) => {
                report.updated += 1;
                return Ok(());
            }
            Refetched::Unchanged(_) | Refetched::SameUrl(_) => {
                report.unchanged += 1;
                return Ok(());
            }
            Refetched::New => {}
        }
        let assignment = self.clusterer.assign(&ClusterDoc {
            id: new.id.to_string(),
            title: new.title.clone(),
            summary: new.summary.clone(),
            publisher: Some(source.id.to_string()),
            published_at: new.published_at,
        });
        let published_at = new.published_at;
        let article_topics = new.topics.clone();
        let title_derived = new.title_derived;
        let story =
            match stories::add_article(db, new, assignment.story, &assignment.merged).await? {
                Added::Stored(story) => story,
                Added::Duplicate => {
                    report.unchanged += 1;
                    return Ok(());
                }
            };
        report.inserted += 1;
        if title_derived {
            report.derived_titles += 1;
        }
        let now = Utc::now();
        report
            .breaking
            .extend(stories::check_breaking(db, story.id, now).await?);
        // SPEC §5.2: a breaking source's new item, once the feed's backlog has been seen.
        let recent = published_at >= now - Duration::minutes(BREAKING_SOURCE_RECENCY_MINUTES);
        if source.breaking && source.last_fetch_at.is_some() && recent {
            for topic in &article_topics {
                if let Some(event) = stories::record_breaking(db, story.id, topic, now).await? {
                    report.breaking.push(event);
                }
            }
        }
        Ok(())
    }
}
