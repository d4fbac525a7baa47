//! The ingest role: claim due feeds through database leases, fetch them within per-host and
//! global concurrency limits, ingest what changed and schedule the next poll. Never gives up
//! on a feed: errors back off (with jitter) up to the max interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use herald_store::articles;
use herald_store::newsroom::PAUSED_OWNER;
use herald_store::source_health;
use herald_store::sources::{self, FetchRecord, Source};
use herald_store::topics::Topic;
use herald_store::websub::{Delivery, Subscription};
use herald_store::{Db, Heartbeat, StoreError};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use crate::cluster::ClusterConfig;
use crate::config::IngestConfig;
use crate::fetch::{ClientBuildError, FetchError, FetchOutcome, Fetcher, Validators};
use crate::pipeline::{IngestReport, Pipeline, PipelineError, prepare};
use crate::policy::{next_poll_after_error, next_poll_after_success};
use crate::websub;

/// How long the scheduler waits before looking for due feeds again when none were due.
const IDLE_TICK: Duration = Duration::from_millis(500);

/// Recent articles whose publication times give a feed's rate after a 304.
const RATE_SAMPLE: u64 = 20;

/// Why the ingest role could not start.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// The clusterer could not be rebuilt from stored articles.
    #[error("cannot rebuild the story clusterer: {0}")]
    Restore(#[from] StoreError),
}

/// What every poll task shares.
struct Shared {
    db: Db,
    config: IngestConfig,
    owner: String,
    fetcher: Fetcher,
    pipeline: Mutex<Pipeline>,
    hosts: std::sync::Mutex<HashMap<String, Arc<Semaphore>>>,
    stop: CancellationToken,
}

impl Shared {
    fn host_limit(&self, url: &Url) -> Arc<Semaphore> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        hosts
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_host_concurrency.max(1))))
            .clone()
    }
}

/// Runs the ingest role until `stop` is cancelled: rebuilds the clusterer from the last 48 h
/// of articles, then polls due feeds. `topics` gives the keywords articles are tagged by.
pub async fn run(
    db: Db,
    config: IngestConfig,
    topics: Vec<Topic>,
    heartbeat: Heartbeat,
    stop: CancellationToken,
) -> Result<(), SchedulerError> {
    let owner = format!("ingest-{}", Uuid::new_v4().simple());
    let fetcher = Fetcher::new(&config)?;
    let mut pipeline = Pipeline::new(&topics, ClusterConfig::default());
    let restored = pipeline.restore(&db, Utc::now()).await?;
    tracing::info!(%owner, restored_stories = restored, "ingest started");

    let global = Arc::new(Semaphore::new(config.global_concurrency.max(1)));
    let lease = Duration::from_secs(config.lease_seconds.max(1));
    let shared = Arc::new(Shared {
        db,
        config,
        owner,
        fetcher,
        pipeline: Mutex::new(pipeline),
        hosts: std::sync::Mutex::new(HashMap::new()),
        stop: stop.clone(),
    });
    let mut tasks: JoinSet<()> = JoinSet::new();
    let pushed = tokio::spawn(ingest_pushed_bodies(shared.clone(), global.clone(), lease));

    while !stop.is_cancelled() {
        while let Some(joined) = tasks.try_join_next() {
            if let Err(err) = joined {
                tracing::error!(error = %err, "a feed poll task panicked");
            }
        }
        let free = global.available_permits();
        let mut claimed = 0;
        if free == 0 {
            // Every fetch slot is busy: the loop is alive and working.
            heartbeat.beat();
        } else {
            match sources::lease_due(&shared.db, &shared.owner, Utc::now(), free as u64, lease)
                .await
            {
                Ok(due) => {
                    heartbeat.beat();
                    claimed = due.len();
                    for source in due {
                        let Ok(permit) = global.clone().acquire_owned().await else {
                            break;
                        };
                        tasks.spawn(poll(shared.clone(), source, permit));
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot claim due feeds"),
            }
        }
        // Claimed a full batch: more may be due, look again at once.
        let pause = if free > 0 && claimed == free {
            Duration::ZERO
        } else {
            IDLE_TICK
        };
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }

    // In-flight fetches see `stop` and end; stores under way finish their transaction.
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            tracing::error!(error = %err, "a feed poll task panicked");
        }
    }
    if let Err(err) = pushed.await {
        tracing::error!(error = %err, "the pushed-body loop panicked");
    }
    if let Err(err) = sources::release_leases(&shared.db, &shared.owner).await {
        tracing::warn!(error = %err, "cannot release feed leases");
    }
    if let Err(err) = herald_store::websub::release_deliveries(&shared.db, &shared.owner).await {
        tracing::warn!(error = %err, "cannot release pushed feed bodies");
    }
    tracing::info!(owner = %shared.owner, "ingest stopped");
    Ok(())
}

/// How often the ingest role looks for bodies a WebSub hub pushed (one indexed read).
const PUSH_TICK: Duration = Duration::from_millis(100);

/// How often the ingest role unsubscribes the hubs of sources the newsroom paused or deleted.
const PAUSED_SWEEP: Duration = Duration::from_secs(5);

/// Unsubscribes the hubs of paused sources (a resumed source is polled at once, and its poll
/// subscribes again).
async fn unsubscribe_paused(shared: &Shared) {
    let paused = match herald_store::websub::of_paused_sources(&shared.db).await {
        Ok(paused) => paused,
        Err(err) => {
            tracing::warn!(error = %err, "cannot look for paused sources' subscriptions");
            return;
        }
    };
    for sub in paused {
        tracing::info!(source = %sub.source_id, hub = %sub.hub_url, "unsubscribing a paused source");
        let done = websub::act(
            &shared.db,
            &shared.fetcher,
            &shared.config.websub,
            sub.source_id,
            websub::Action::Replace { next: None },
            Some(&sub),
            Utc::now(),
        );
        let done = tokio::select! {
            () = shared.stop.cancelled() => return,
            done = done => done,
        };
        if let Err(err) = done {
            tracing::warn!(source = %sub.source_id, error = %err, "cannot unsubscribe a paused source");
        }
    }
}

/// Most owed unsubscriptions of deleted sources sent in one sweep.
const DEPARTURES_PER_SWEEP: u64 = 32;

/// Sends the unsubscriptions owed to the hubs of deleted sources.
async fn unsubscribe_deleted(shared: &Shared) {
    let now = Utc::now();
    let due =
        match herald_store::websub::departures_due(&shared.db, now, DEPARTURES_PER_SWEEP).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "cannot look for deleted sources' subscriptions");
                return;
            }
        };
    for departure in due {
        tracing::info!(source = %departure.source_id, hub = %departure.hub_url, "unsubscribing a deleted source");
        let done = websub::depart(
            &shared.db,
            &shared.fetcher,
            &shared.config.websub,
            &departure,
            Utc::now(),
        );
        let done = tokio::select! {
            () = shared.stop.cancelled() => return,
            done = done => done,
        };
        if let Err(err) = done {
            tracing::warn!(source = %departure.source_id, error = %err, "cannot unsubscribe a deleted source");
        }
    }
}

/// Takes the bodies WebSub hubs pushed to the api role, as soon as they are queued, and
/// ingests them (sharing the fetch slots with polls) until `stop`.
async fn ingest_pushed_bodies(shared: Arc<Shared>, global: Arc<Semaphore>, lease: Duration) {
    let mut tasks: JoinSet<()> = JoinSet::new();
    let mut paused_checked = std::time::Instant::now();
    while !shared.stop.is_cancelled() {
        if paused_checked.elapsed() >= PAUSED_SWEEP {
            paused_checked = std::time::Instant::now();
            unsubscribe_paused(&shared).await;
            unsubscribe_deleted(&shared).await;
        }
        while let Some(joined) = tasks.try_join_next() {
            if let Err(err) = joined {
                tracing::error!(error = %err, "a pushed-body task panicked");
            }
        }
        let now = Utc::now();
        let free = global.available_permits() as u64;
        let waiting = free > 0
            && herald_store::websub::any_waiting(&shared.db, now)
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "cannot look for pushed feed bodies");
                    false
                });
        if waiting {
            match herald_store::websub::lease_deliveries(
                &shared.db,
                &shared.owner,
                now,
                free,
                lease,
            )
            .await
            {
                Ok(pushed) => {
                    for delivery in pushed {
                        let Ok(permit) = global.clone().acquire_owned().await else {
                            break;
                        };
                        tasks.spawn(ingest_pushed(shared.clone(), delivery, permit));
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot claim pushed feed bodies"),
            }
        }
        tokio::select! {
            () = shared.stop.cancelled() => break,
            () = tokio::time::sleep(PUSH_TICK) => {}
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            tracing::error!(error = %err, "a pushed-body task panicked");
        }
    }
}

/// Fetches and ingests one leased source, then records the outcome and releases the lease.
async fn poll(shared: Arc<Shared>, source: Source, _permit: OwnedSemaphorePermit) {
    let started = Utc::now();
    let url = match Url::parse(&source.feed_url) {
        Ok(url) => url,
        Err(err) => {
            let error = format!("invalid feed URL: {err}");
            record_error(&shared, &source, None, error, None).await;
            return;
        }
    };
    let host = shared.host_limit(&url);
    let _host_permit = tokio::select! {
        () = shared.stop.cancelled() => return,
        permit = host.acquire_owned() => match permit {
            Ok(permit) => permit,
            Err(_) => return,
        },
    };
    let validators = Validators {
        etag: source.etag.clone(),
        last_modified: source.last_modified.clone(),
    };
    let outcome = tokio::select! {
        () = shared.stop.cancelled() => return,
        outcome = shared.fetcher.fetch(&url, &validators) => outcome,
    };
    let now = Utc::now();
    let override_interval = source
        .poll_interval_seconds
        .map(|s| Duration::from_secs(u64::from(s)));
    match outcome {
        FetchOutcome::Fetched {
            body,
            content_type,
            validators,
            final_url,
            caching,
            links,
        } => {
            let mut discovered = None;
            // Parsing runs outside the pipeline lock; only clustering and storing are serial.
            let ingested = match prepare(body, content_type, &final_url, now).await {
                Ok(prepared) => {
                    discovered =
                        websub::discover(&links, prepared.hubs(), prepared.self_url(), &final_url);
                    // Stopping: leave the body; the released lease lets the next worker fetch it.
                    let mut pipeline = tokio::select! {
                        () = shared.stop.cancelled() => return,
                        pipeline = shared.pipeline.lock() => pipeline,
                    };
                    pipeline
                        .store(&shared.db, &source, prepared, now)
                        .await
                        .map_err(PipelineError::from)
                }
                Err(e) => Err(e),
            };
            match ingested {
                Ok(report) => {
                    tracing::debug!(
                        source = %source.feed_url,
                        items = report.items,
                        inserted = report.inserted,
                        updated = report.updated,
                        breaking = report.breaking.len(),
                        elapsed_ms = (Utc::now() - started).num_milliseconds(),
                        "feed ingested"
                    );
                    let next = next_poll_after_success(
                        &shared.config,
                        &report.item_times,
                        report.ttl_minutes,
                        &caching,
                        override_interval,
                        now,
                        &mut rand::rng(),
                    );
                    let subscription = current_subscription(&shared, &source).await;
                    let next = match subscription.as_ref().filter(|s| s.delivers(now)) {
                        // The hub missed what this poll found: poll as usual until it delivers.
                        Some(_) if report.inserted > 0 => {
                            tracing::info!(
                                source = %source.feed_url,
                                missed = report.inserted,
                                "the websub hub did not deliver items a poll found"
                            );
                            next
                        }
                        Some(sub) => {
                            websub::relaxed_next_poll(&shared.config.websub, sub, next, now)
                        }
                        None => next,
                    };
                    record(
                        &shared,
                        &source,
                        FetchRecord {
                            status: Some(200),
                            validators: Some((validators.etag, validators.last_modified)),
                            error: None,
                            next_fetch_at: next,
                            fetched_at: now,
                        },
                    )
                    .await;
                    count_entries(&shared, &source, &report, false).await;
                    maintain_subscription(&shared, &source, discovered, subscription.as_ref())
                        .await;
                }
                Err(err) => {
                    record_error(&shared, &source, Some(200), err.to_string(), None).await;
                }
            }
        }
        FetchOutcome::NotModified { caching } => {
            // Nothing new: the feed's rate comes from what it published before.
            let times = articles::recent_times(&shared.db, source.id, RATE_SAMPLE)
                .await
                .unwrap_or_default();
            let next = next_poll_after_success(
                &shared.config,
                &times,
                None,
                &caching,
                override_interval,
                now,
                &mut rand::rng(),
            );
            let subscription = current_subscription(&shared, &source).await;
            let next = match subscription.as_ref().filter(|s| s.delivers(now)) {
                Some(sub) => websub::relaxed_next_poll(&shared.config.websub, sub, next, now),
                None => next,
            };
            record(
                &shared,
                &source,
                FetchRecord {
                    status: Some(304),
                    validators: None,
                    error: None,
                    next_fetch_at: next,
                    fetched_at: now,
                },
            )
            .await;
            // Unchanged feed, unchanged hub: keep (or renew) what is subscribed.
            let discovered = subscription.as_ref().and_then(|s| {
                Some(websub::Discovery {
                    hub: Url::parse(&s.hub_url).ok()?,
                    topic: Url::parse(&s.topic_url).ok()?,
                })
            });
            maintain_subscription(&shared, &source, discovered, subscription.as_ref()).await;
        }
        FetchOutcome::Throttled {
            retry_after,
            status,
        } => {
            let error = format!("HTTP status {status} (throttled)");
            record_error(&shared, &source, Some(status), error, retry_after).await;
        }
        FetchOutcome::Failed { error, retry_after } => {
            let status = match error {
                FetchError::Status(code) => Some(code),
                _ => None,
            };
            record_error(&shared, &source, status, error.to_string(), retry_after).await;
        }
    }
}

async fn current_subscription(shared: &Shared, source: &Source) -> Option<Subscription> {
    herald_store::websub::get(&shared.db, source.id)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(source = %source.feed_url, error = %err, "cannot read the websub subscription");
            None
        })
}

/// Subscribes, renews or unsubscribes as the last poll calls for.
async fn maintain_subscription(
    shared: &Shared,
    source: &Source,
    discovered: Option<websub::Discovery>,
    current: Option<&Subscription>,
) {
    let now = Utc::now();
    let action = websub::decide(&shared.config.websub, discovered, current, now);
    if action == websub::Action::Keep {
        return;
    }
    let acted = websub::act(
        &shared.db,
        &shared.fetcher,
        &shared.config.websub,
        source.id,
        action,
        current,
        now,
    );
    let acted = tokio::select! {
        () = shared.stop.cancelled() => return,
        acted = acted => acted,
    };
    if let Err(err) = acted {
        tracing::warn!(source = %source.feed_url, error = %err, "cannot record a websub request");
    }
}

/// Adds what one feed body's entries became to the source's health counters.
async fn count_entries(shared: &Shared, source: &Source, report: &IngestReport, pushed: bool) {
    let counted = source_health::add(
        &shared.db,
        source.id,
        &report.counts(pushed),
        report.last_refusal.as_deref(),
        Utc::now(),
    )
    .await;
    if let Err(err) = counted {
        tracing::warn!(source = %source.feed_url, error = %err, "cannot count a feed's entries");
    }
}

/// Ingests one pushed body through the same path as a poll, then removes it from the queue.
async fn ingest_pushed(shared: Arc<Shared>, delivery: Delivery, _permit: OwnedSemaphorePermit) {
    let finish = |why: &'static str| {
        let shared = shared.clone();
        async move {
            if let Err(err) =
                herald_store::websub::finish_delivery(&shared.db, delivery.id, &shared.owner).await
            {
                tracing::warn!(delivery = %delivery.id, error = %err, why, "cannot finish a websub delivery");
            }
        }
    };
    let source = match sources::get(&shared.db, delivery.source_id).await {
        Ok(source) => source,
        Err(err) => {
            tracing::warn!(delivery = %delivery.id, error = %err, "pushed body of an unreadable source");
            return;
        }
    };
    if source.lease_owner.as_deref() == Some(PAUSED_OWNER) {
        tracing::info!(source = %source.feed_url, "pushed body of a paused source dropped");
        finish("paused").await;
        return;
    }
    let base = match current_subscription(&shared, &source).await {
        Some(sub) => Url::parse(&sub.topic_url).ok(),
        None => None,
    }
    .or_else(|| Url::parse(&source.feed_url).ok());
    let Some(base) = base else {
        finish("no base URL").await;
        return;
    };
    let now = Utc::now();
    let prepared = match prepare(
        Bytes::from(delivery.body.clone()),
        delivery.content_type.clone(),
        &base,
        now,
    )
    .await
    {
        Ok(prepared) => prepared,
        Err(err) => {
            tracing::warn!(source = %source.feed_url, error = %err, "pushed body is not a feed");
            finish("unparsable").await;
            return;
        }
    };
    let mut pipeline = tokio::select! {
        // Stopping: the lease runs out and another worker ingests the body.
        () = shared.stop.cancelled() => return,
        pipeline = shared.pipeline.lock() => pipeline,
    };
    match pipeline.store(&shared.db, &source, prepared, now).await {
        Ok(report) => {
            drop(pipeline);
            tracing::info!(
                source = %source.feed_url,
                items = report.items,
                inserted = report.inserted,
                breaking = report.breaking.len(),
                waited_ms = (Utc::now() - delivery.received_at).num_milliseconds(),
                "pushed feed ingested"
            );
            count_entries(&shared, &source, &report, true).await;
            finish("ingested").await;
        }
        // The lease runs out and the body is tried again.
        Err(err) => {
            tracing::warn!(source = %source.feed_url, error = %err, "cannot store a pushed feed")
        }
    }
}

async fn record_error(
    shared: &Shared,
    source: &Source,
    status: Option<u16>,
    error: String,
    retry_after: Option<Duration>,
) {
    let now = Utc::now();
    let errors = source.error_count.saturating_add(1);
    let next = next_poll_after_error(&shared.config, errors, retry_after, now, &mut rand::rng());
    tracing::info!(source = %source.feed_url, %error, errors, %next, "feed fetch failed");
    record(
        shared,
        source,
        FetchRecord {
            status,
            validators: None,
            error: Some(error),
            next_fetch_at: next,
            fetched_at: now,
        },
    )
    .await;
}

async fn record(shared: &Shared, source: &Source, record: FetchRecord) {
    if let Err(err) = sources::record_fetch(&shared.db, source.id, &shared.owner, record).await {
        tracing::warn!(source = %source.feed_url, error = %err, "cannot record a feed fetch");
    }
}
