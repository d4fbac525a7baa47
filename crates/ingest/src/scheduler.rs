//! The ingest role: claim due feeds through database leases, fetch them within per-host and
//! global concurrency limits, ingest what changed and schedule the next poll. Never gives up
//! on a feed: errors back off (with jitter) up to the max interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use herald_store::articles;
use herald_store::sources::{self, FetchRecord, Source};
use herald_store::topics::Topic;
use herald_store::{Db, Heartbeat, StoreError};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use crate::cluster::ClusterConfig;
use crate::config::IngestConfig;
use crate::fetch::{ClientBuildError, FetchError, FetchOutcome, Fetcher, Validators};
use crate::pipeline::{Pipeline, PipelineError, prepare};
use crate::policy::{next_poll_after_error, next_poll_after_success};

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
    if let Err(err) = sources::release_leases(&shared.db, &shared.owner).await {
        tracing::warn!(error = %err, "cannot release feed leases");
    }
    tracing::info!(owner = %shared.owner, "ingest stopped");
    Ok(())
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
        } => {
            // Parsing runs outside the pipeline lock; only clustering and storing are serial.
            let ingested = match prepare(body, content_type, &final_url, now).await {
                Ok(prepared) => {
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
