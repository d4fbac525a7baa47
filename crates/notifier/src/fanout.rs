//! The notifier role: leases batches from the durable queue, decides per device (followed,
//! once per story, daily cap, quiet hours), sends through the platform's sender with bounded
//! concurrency, retries transient failures until the TTL runs out, and records every outcome.
//!
//! Nothing lives only in memory: a batch whose notifier dies is leased again when its lease
//! lapses, and resumes with the devices that have no recorded outcome yet.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use herald_store::devices::{
    self, ApnsEnvironment as StoreApnsEnvironment, Device, DeviceAddress, Target,
};
use herald_store::queue::{
    self, AlertState, DeliveryRecord, DeliveryStatus, Lease, QueuedAlert, Replacement,
};
use herald_store::retries::{self, DueRetry, NewRetry, RetryKind};
use herald_store::{Db, Heartbeat, StoreError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use crate::breaker::Breakers;
use crate::config::{FanoutConfig, PushConfig};
use crate::rules::{AlertRules, Hold};
use crate::send::{
    AlertPayload, ApnsEnvironment, ApnsSender, DeliveryOutcome, FcmSender, MessageOptions,
    SetupError, WebPushSender,
};
use crate::webpush::{SubscriptionKeys, Urgency, VapidKeys, VapidSigner, WebPushSubscription};

/// The senders the fan-out may use; a platform without one records its devices as failed.
#[derive(Debug, Clone, Default)]
pub struct Senders {
    /// Browsers.
    pub webpush: Option<Arc<WebPushSender>>,
    /// Android apps.
    pub fcm: Option<Arc<FcmSender>>,
    /// iOS apps.
    pub apns: Option<Arc<ApnsSender>>,
}

impl Senders {
    /// Web Push always (signing with `vapid` as `config.vapid_subject`); FCM and APNs when enabled.
    pub fn from_config(config: &PushConfig, vapid: VapidKeys) -> Result<Self, SetupError> {
        let signer = VapidSigner::new(vapid, config.vapid_subject.clone()).map_err(|e| {
            SetupError::InvalidCredentials {
                what: "VAPID key or subject",
                reason: e.to_string(),
            }
        })?;
        Ok(Self {
            webpush: Some(Arc::new(WebPushSender::new(config, signer)?)),
            fcm: FcmSender::from_config(config)?.map(Arc::new),
            apns: ApnsSender::from_config(config)?.map(Arc::new),
        })
    }
}

impl Senders {
    /// Sends one message to one device through its platform's sender.
    pub async fn send(
        &self,
        address: &DeviceAddress,
        payload: &AlertPayload,
        opts: &MessageOptions,
    ) -> DeliveryOutcome {
        let senders = self;
        match address {
            DeviceAddress::WebPush {
                endpoint,
                p256dh,
                auth,
            } => {
                let Some(sender) = &senders.webpush else {
                    return DeliveryOutcome::failed("Web Push is not configured");
                };
                let endpoint = match Url::parse(endpoint) {
                    Ok(url) => url,
                    Err(e) => return DeliveryOutcome::failed(format!("bad endpoint: {e}")),
                };
                let keys = match SubscriptionKeys::from_bytes(p256dh, auth) {
                    Ok(keys) => keys,
                    Err(e) => {
                        return DeliveryOutcome::failed(format!("bad subscription keys: {e:?}"));
                    }
                };
                sender
                    .send(&WebPushSubscription { endpoint, keys }, payload, opts)
                    .await
            }
            DeviceAddress::Fcm { token } => match &senders.fcm {
                Some(sender) => sender.send(token, payload, opts).await,
                None => DeliveryOutcome::failed("FCM is not enabled"),
            },
            DeviceAddress::Apns { token, environment } => match &senders.apns {
                Some(sender) => {
                    let environment = match environment {
                        StoreApnsEnvironment::Production => ApnsEnvironment::Production,
                        StoreApnsEnvironment::Sandbox => ApnsEnvironment::Sandbox,
                    };
                    sender.send(token, environment, payload, opts).await
                }
                None => DeliveryOutcome::failed("APNs is not enabled"),
            },
        }
    }
}

/// How the fan-out paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanoutSettings {
    /// Devices per batch.
    pub batch_size: u64,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease_for: Duration,
    /// Wait between polls when the queue is empty.
    pub idle_poll: Duration,
    /// Deliveries of one batch in flight at once (each sender also has its own limit).
    pub concurrency: usize,
    /// First retry delay; doubled per attempt, with jitter.
    pub retry_base: Duration,
    /// Longest retry delay (a push service's `Retry-After` may ask for more).
    pub retry_max: Duration,
    /// Outcomes written to the database per statement.
    pub record_chunk: usize,
    /// How long a batch waits for one delivery's first attempt before parking it for a retry.
    pub first_attempt_timeout: Duration,
    /// Transient failures in a row that open an origin's circuit (0: never).
    pub breaker_failures: u32,
    /// How long an origin's circuit first stays open.
    pub breaker_cooldown: Duration,
}

impl Default for FanoutSettings {
    fn default() -> Self {
        Self::from_config(&FanoutConfig::default())
    }
}

impl FanoutSettings {
    /// The settings `[push.fanout]` asks for (zero sizes read as one).
    pub fn from_config(config: &FanoutConfig) -> Self {
        Self {
            batch_size: config.batch_size.max(1),
            lease_for: Duration::from_secs(config.lease_seconds.max(1)),
            idle_poll: Duration::from_millis(config.idle_poll_ms),
            concurrency: config.concurrency.max(1),
            retry_base: Duration::from_millis(config.retry_base_ms),
            retry_max: Duration::from_secs(config.retry_max_seconds),
            record_chunk: config.record_chunk.max(1),
            first_attempt_timeout: Duration::from_millis(config.first_attempt_timeout_ms.max(1)),
            breaker_failures: config.breaker_failures,
            breaker_cooldown: Duration::from_secs(config.breaker_cooldown_seconds),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: &'static str,
    outcome: &'static str,
}

/// The fan-out's metrics: deliveries by channel and outcome, queue depth, alert-to-delivery latency.
#[derive(Clone, Debug)]
pub struct FanoutMetrics {
    deliveries: Family<DeliveryLabels, Counter>,
    queue_depth: Gauge,
    latency: Histogram,
}

impl FanoutMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        registry.register(
            "notifier_deliveries",
            "Per-device alert outcomes (and retried attempts), by channel and outcome",
            metrics.deliveries.clone(),
        );
        registry.register(
            "notifier_queue_depth",
            "Alert batches queued or being sent",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "notifier_alert_to_delivery_seconds",
            "Time from an alert's creation to a push service accepting it for a device",
            metrics.latency.clone(),
        );
        metrics
    }

    /// Metrics that no registry exports (tools and tests).
    pub fn unregistered() -> Self {
        Self {
            deliveries: Family::default(),
            queue_depth: Gauge::default(),
            latency: Histogram::new([
                0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
            ]),
        }
    }

    fn count(&self, channel: &'static str, outcome: &'static str) {
        self.deliveries
            .get_or_create(&DeliveryLabels { channel, outcome })
            .inc();
    }
}

/// The notifier role: runs the fan-out until `stop` is cancelled.
pub async fn run(
    db: Db,
    config: PushConfig,
    senders: Senders,
    metrics: FanoutMetrics,
    heartbeat: Heartbeat,
    stop: CancellationToken,
) -> Result<(), StoreError> {
    let settings = FanoutSettings::from_config(&config.fanout);
    let workers = config.fanout.workers.max(1);
    let fanout = Fanout::with_heartbeat(db, config, senders, metrics, settings, heartbeat);
    // Each worker is its own task, so the workers' encryption runs on every core.
    let mut runs = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let fanout = fanout.clone();
        let stop = stop.clone();
        runs.spawn(async move { fanout.run(stop).await });
    }
    while let Some(joined) = runs.join_next().await {
        match joined {
            Ok(result) => result?,
            Err(err) => tracing::error!(error = %err, "a notifier worker died"),
        }
    }
    Ok(())
}

/// One notifier process's share of the fan-out.
#[derive(Debug, Clone)]
pub struct Fanout {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    config: PushConfig,
    senders: Senders,
    metrics: FanoutMetrics,
    settings: FanoutSettings,
    owner: String,
    /// When this process last swept; shared by its workers, so they sweep once between them.
    last_sweep: std::sync::Mutex<Option<Instant>>,
    /// When this process last looked for newly breaking stories (more often than it sweeps:
    /// a breaking story is the one thing a reader is waiting for).
    last_trigger: std::sync::Mutex<Option<Instant>>,
    /// Beats whenever a worker's lease attempt reached the database (for `/readyz`).
    heartbeat: Heartbeat,
    /// Circuit breakers per push-service origin, shared by the workers.
    breakers: Breakers,
    /// Set by the first worker to start, which also drains the retry queue for the process.
    retrying: AtomicBool,
}

/// What one delivery attempt came to.
enum Attempted {
    /// An outcome to record.
    Done(DeliveryRecord),
    /// Try again later, from the retry queue.
    Deferred(NewRetry),
    /// Stopped before it ended (the process or the batch is stopping).
    Interrupted,
}

impl Fanout {
    /// A notifier with a fresh lease-owner id.
    pub fn new(
        db: Db,
        config: PushConfig,
        senders: Senders,
        metrics: FanoutMetrics,
        settings: FanoutSettings,
    ) -> Self {
        Self::with_heartbeat(
            db,
            config,
            senders,
            metrics,
            settings,
            Heartbeat::new("notifier"),
        )
    }

    /// A notifier that beats `heartbeat` whenever it reaches the queue.
    pub fn with_heartbeat(
        db: Db,
        config: PushConfig,
        senders: Senders,
        metrics: FanoutMetrics,
        settings: FanoutSettings,
        heartbeat: Heartbeat,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                config,
                senders,
                metrics,
                owner: format!("notifier-{}", Uuid::new_v4().simple()),
                last_sweep: std::sync::Mutex::new(None),
                last_trigger: std::sync::Mutex::new(None),
                heartbeat,
                breakers: Breakers::new(
                    settings.breaker_failures,
                    settings.breaker_cooldown,
                    settings.retry_max,
                ),
                retrying: AtomicBool::new(false),
                settings,
            }),
        }
    }

    /// Who this notifier leases batches as.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Leases and delivers batches until `stop` is cancelled; database trouble is logged and
    /// waited out, never fatal.
    ///
    /// A worker prepares its next batch (lease, reads, story claims) while it sends the current
    /// one, so the database round trips of one batch overlap the sending of another.
    pub async fn run(&self, stop: CancellationToken) -> Result<(), StoreError> {
        let drains_retries = !self.inner.retrying.swap(true, Ordering::SeqCst);
        let retries = async {
            if drains_retries {
                self.retry_loop(&stop).await;
            }
        };
        let ((), result) = tokio::join!(retries, self.run_batches(&stop));
        result
    }

    async fn run_batches(&self, stop: &CancellationToken) -> Result<(), StoreError> {
        let stop = stop.clone();
        tracing::info!(owner = %self.inner.owner, "notifier started");
        let mut next: Option<Prepared> = None;
        while !stop.is_cancelled() {
            if self.sweep_due() {
                self.sweep().await;
            } else if due(&self.inner.last_trigger, TRIGGER_EVERY) {
                self.alert_breaking().await;
            }
            let current = match next.take() {
                Some(prepared) => prepared,
                None => match self.prepare(&stop).await {
                    Ok(Some(prepared)) => prepared,
                    Ok(None) => {
                        pause(&stop, self.inner.settings.idle_poll).await;
                        continue;
                    }
                    Err(err) => {
                        wait_out(&stop, &err).await;
                        continue;
                    }
                },
            };
            let sending_done = CancellationToken::new();
            let sending = async {
                let result = self.finish(current, &stop).await;
                sending_done.cancel();
                result
            };
            let (sent, prepared) = tokio::join!(sending, self.prepare_while(&stop, &sending_done));
            next = prepared;
            if let Err(err) = sent {
                wait_out(&stop, &err).await;
            }
        }
        if let Some(unsent) = next {
            self.release(unsent).await;
        }
        tracing::info!(owner = %self.inner.owner, "notifier stopped");
        Ok(())
    }

    /// Prepares the next batch while the current one is being sent: tries again, a little
    /// later each time, while the queue has nothing to lease (another worker may be planning
    /// the alert's next batch right now) and gives up when the sending is done.
    async fn prepare_while(
        &self,
        stop: &CancellationToken,
        sending_done: &CancellationToken,
    ) -> Option<Prepared> {
        let mut wait = Duration::from_millis(10);
        while !stop.is_cancelled() && !sending_done.is_cancelled() {
            match self.prepare(stop).await {
                Ok(Some(prepared)) => return Some(prepared),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "cannot prepare the next batch"),
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = sending_done.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(self.inner.settings.idle_poll.max(Duration::from_millis(10)));
        }
        None
    }

    /// True, and the clock restarted, when no worker of this process swept in the last 2 s.
    fn sweep_due(&self) -> bool {
        due(&self.inner.last_sweep, Duration::from_secs(2))
    }

    /// Starts scheduled alerts that are due, and queues alerts for newly breaking stories (a
    /// read each when there are none).
    async fn alert_breaking(&self) {
        match queue::release_scheduled(&self.inner.db, Utc::now()).await {
            Ok(started) if started.is_empty() => {}
            Ok(started) => tracing::info!(alerts = started.len(), "scheduled alerts started"),
            Err(err) => tracing::warn!(error = %err, "cannot start scheduled alerts"),
        }
        match crate::triggers::alert_breaking_stories(&self.inner.db, &self.inner.config).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "breaking stories queued"),
            Err(err) => tracing::warn!(error = %err, "cannot queue breaking stories"),
        }
    }

    /// Queues alerts for newly breaking stories, expires alerts past their TTL and refreshes the
    /// queue-depth gauge.
    async fn sweep(&self) {
        let db = &self.inner.db;
        self.alert_breaking().await;
        match queue::expire_due(db, Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(alerts = n, "alerts expired"),
            Err(err) => tracing::warn!(error = %err, "cannot expire alerts"),
        }
        if let Ok(depth) = queue::depth(db).await {
            self.inner
                .metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
    }

    /// Leases and delivers one batch; false when the queue had nothing to lease.
    pub async fn step(&self, stop: &CancellationToken) -> Result<bool, StoreError> {
        match self.prepare(stop).await? {
            Some(prepared) => {
                self.finish(prepared, stop).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Leases a batch, keeps its lease alive, and decides its devices up to the send: who is
    /// skipped (recorded at once) and who is sent, the story claimed for each of those.
    async fn prepare(&self, stop: &CancellationToken) -> Result<Option<Prepared>, StoreError> {
        let inner = &self.inner;
        let leased = queue::lease_batch(
            &inner.db,
            &inner.owner,
            inner.settings.lease_for,
            inner.settings.batch_size,
        )
        .await?;
        inner.heartbeat.beat();
        let Some((lease, targets)) = leased else {
            return Ok(None);
        };
        if lease.attempts > 1 {
            tracing::info!(batch = %lease.batch_id, alert = %lease.alert.id, attempts = lease.attempts, "taking over a lapsed batch");
        }
        let batch_stop = stop.child_token();
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
            inner.db.clone(),
            lease.clone(),
            inner.settings.lease_for,
            batch_stop.clone(),
            Arc::clone(&lost),
        )));
        let mut prepared = Prepared {
            lease,
            sends: Vec::new(),
            batch_stop,
            lost,
            _heartbeat: heartbeat,
        };
        match self.decide(&prepared.lease, targets).await {
            Ok(sends) => {
                prepared.sends = sends;
                Ok(Some(prepared))
            }
            Err(err) => {
                // Hand the batch back rather than leave it to lapse.
                self.release(prepared).await;
                Err(err)
            }
        }
    }

    /// Gives a prepared batch back to the queue unsent (its claims stay this alert's).
    async fn release(&self, prepared: Prepared) {
        if let Err(err) = queue::release(&self.inner.db, &prepared.lease).await {
            tracing::warn!(batch = %prepared.lease.batch_id, error = %err, "cannot release batch; it will be taken over when its lease lapses");
        }
    }

    /// Sends a prepared batch, records every outcome, and completes (or, when stopping,
    /// releases) it.
    async fn finish(&self, prepared: Prepared, stop: &CancellationToken) -> Result<(), StoreError> {
        let inner = &self.inner;
        let lease = &prepared.lease;
        self.send_batch(lease, prepared.sends, &prepared.batch_stop)
            .await?;
        if prepared.lost.load(Ordering::SeqCst) {
            tracing::info!(batch = %lease.batch_id, alert = %lease.alert.id, "batch stopped: alert cancelled or expired, or lease lost");
        } else if stop.is_cancelled() {
            queue::release(&inner.db, lease).await?;
        } else {
            queue::complete(&inner.db, lease).await?;
            // Updated while this batch sent the older version: its devices get the new one.
            queue::replace_stale(
                &inner.db,
                lease.alert.id,
                lease.alert.version,
                lease.after,
                lease.until,
            )
            .await?;
        }
        Ok(())
    }

    /// The batch's devices that are to be sent, with the followed topic each is sent for; the
    /// others are recorded as skipped. Claims the story for each device to be sent.
    async fn decide(
        &self,
        lease: &Lease,
        targets: Vec<Target>,
    ) -> Result<Vec<(Target, String)>, StoreError> {
        let inner = &self.inner;
        let db = &inner.db;
        let alert = &lease.alert;
        let now = Utc::now();
        // Only a batch leased before (a takeover, a released batch) can have outcomes already.
        let targets: Vec<Target> = if lease.attempts > 1 {
            let ids: Vec<Uuid> = targets.iter().map(|t| t.device.id).collect();
            let recorded: HashSet<Uuid> = queue::already_recorded(db, alert.id, &ids)
                .await?
                .into_iter()
                .collect();
            targets
                .into_iter()
                .filter(|t| !recorded.contains(&t.device.id))
                .collect()
        } else {
            targets
        };
        let mut owners: Vec<Uuid> = targets.iter().map(|t| t.device.user_id).collect();
        owners.sort_unstable();
        owners.dedup();
        let mut followed: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (user, topic) in queue::followed(db, &owners, &alert.topics).await? {
            followed.entry(user).or_default().push(topic);
        }
        let ids: Vec<Uuid> = targets.iter().map(|t| t.device.id).collect();
        // Two days back covers the start of any time zone's local day.
        let mut sent_today: HashMap<Uuid, Vec<DateTime<Utc>>> = HashMap::new();
        for (device, at) in queue::sent_times(db, &ids, now - chrono::Duration::hours(50)).await? {
            sent_today.entry(device).or_default().push(at);
        }

        let rules = AlertRules::new(&inner.config, &alert.urgency);
        let local_time = alert
            .local_time
            .as_deref()
            .and_then(crate::draft::parse_local_time);
        let mut skipped = Vec::new();
        let mut eligible = Vec::new();
        for target in targets {
            let device = &target.device;
            // A local-time alert is judged at the device's own delivery time.
            let at = match local_time {
                Some(time) => {
                    crate::rules::next_local_time(&target, time, alert.starts_at()).max(now)
                }
                None => now,
            };
            let skip = |status: DeliveryStatus| {
                inner
                    .metrics
                    .count(channel(&device.address), status.as_str());
                DeliveryRecord {
                    user_id: device.user_id,
                    device_id: device.id,
                    status,
                    reason: None,
                    attempts: 0,
                    at: now,
                    version: alert.version,
                    topic: None,
                }
            };
            let Some(topics) = followed.get(&device.user_id) else {
                skipped.push(skip(DeliveryStatus::Unfollowed));
                continue;
            };
            let sent = sent_today.get(&device.id).map_or(&[][..], Vec::as_slice);
            match rules.hold(&target, sent, at) {
                Some(Hold::DailyCap) => skipped.push(skip(DeliveryStatus::DailyCap)),
                Some(Hold::QuietHours) => skipped.push(skip(DeliveryStatus::QuietHours)),
                None => {
                    let topic = alert
                        .topics
                        .iter()
                        .find(|t| topics.contains(t))
                        .cloned()
                        .unwrap_or_default();
                    eligible.push((target, topic, at));
                }
            }
        }
        // Claimed only for devices about to be sent, so a skipped device may get the story later.
        let eligible_ids: Vec<Uuid> = eligible.iter().map(|(t, _, _)| t.device.id).collect();
        let claimed: HashSet<Uuid> = queue::claim_story(db, alert, &eligible_ids)
            .await?
            .into_iter()
            .collect();
        let mut sends = Vec::new();
        let mut waiting = Vec::new();
        for (target, topic, at) in eligible {
            if claimed.contains(&target.device.id) && at > now + LOCAL_TIME_SLACK {
                // Its local time is still to come: it waits on the retry queue until then.
                waiting.push(NewRetry {
                    device_id: target.device.id,
                    user_id: target.device.user_id,
                    topic,
                    attempts: 0,
                    due_at: at,
                    reason: "waiting for the reader's local delivery time".into(),
                    kind: RetryKind::Local,
                });
            } else if claimed.contains(&target.device.id) {
                sends.push((target, topic));
            } else {
                inner
                    .metrics
                    .count(channel(&target.device.address), "duplicate");
                skipped.push(DeliveryRecord {
                    user_id: target.device.user_id,
                    device_id: target.device.id,
                    status: DeliveryStatus::Duplicate,
                    reason: None,
                    attempts: 0,
                    at: now,
                    version: alert.version,
                    topic: Some(topic),
                });
            }
        }
        retries::defer(db, alert.id, &waiting).await?;
        queue::record_batch(db, lease, &skipped).await?;
        Ok(sends)
    }

    /// Sends to `sends` with bounded concurrency while a chunk of outcomes is written beside it;
    /// deliveries that must be tried again are parked in the retry queue, so the batch never
    /// waits on a slow or failing push service.
    async fn send_batch(
        &self,
        lease: &Lease,
        sends: Vec<(Target, String)>,
        stop: &CancellationToken,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let db = &inner.db;
        let alert = &lease.alert;
        // Sending and recording run side by side: a chunk of outcomes is written while the
        // next deliveries are in flight. The batch completes only after every outcome is written.
        let chunk = inner.settings.record_chunk;
        let (written, mut to_write) = tokio::sync::mpsc::channel::<Vec<DeliveryRecord>>(4);
        let sending = async move {
            let mut outcomes = futures::stream::iter(sends)
                .map(|(target, topic)| self.deliver(alert, target, topic, stop))
                .buffer_unordered(inner.settings.concurrency.max(1));
            let mut pending = Vec::with_capacity(chunk);
            let mut deferred = Vec::new();
            while let Some(outcome) = outcomes.next().await {
                match outcome {
                    Attempted::Done(record) => pending.push(record),
                    Attempted::Deferred(retry) => deferred.push(retry),
                    Attempted::Interrupted => {}
                }
                if pending.len() >= chunk {
                    let full = std::mem::replace(&mut pending, Vec::with_capacity(chunk));
                    if written.send(full).await.is_err() {
                        return deferred; // the writer failed; its error ends the batch
                    }
                }
            }
            if !pending.is_empty() {
                let _ = written.send(pending).await;
            }
            deferred
        };
        let recording = async move {
            while let Some(records) = to_write.recv().await {
                queue::record_batch(db, lease, &records).await?;
            }
            Ok::<(), StoreError>(())
        };
        let (deferred, recorded) = tokio::join!(sending, recording);
        recorded?;
        // Parked before the batch completes, so the alert is not done while they wait.
        retries::defer(db, alert.id, &deferred).await
    }

    /// The first attempt of one alert to one device, within the batch's deadline: its outcome,
    /// or the device parked for a retry when the push service asks for one or is too slow.
    async fn deliver(
        &self,
        alert: &QueuedAlert,
        target: Target,
        topic: String,
        stop: &CancellationToken,
    ) -> Attempted {
        let device = target.device;
        let deadline = Some(self.inner.settings.first_attempt_timeout);
        let outcome = tokio::select! {
            _ = stop.cancelled() => return Attempted::Interrupted,
            outcome = self.attempt(alert, &device, &topic, deadline) => outcome,
        };
        self.conclude(alert, &device, topic, 1, outcome).await
    }

    /// One send of `alert` to `device`, unless its push service's circuit is open; `deadline`
    /// bounds the wait for an answer (the sender's own timeout applies in any case).
    async fn attempt(
        &self,
        alert: &QueuedAlert,
        device: &Device,
        topic: &str,
        deadline: Option<Duration>,
    ) -> DeliveryOutcome {
        let inner = &self.inner;
        let origin = origin(&device.address);
        if let Err(wait) = inner.breakers.check(&origin) {
            return DeliveryOutcome::Retry {
                after: Some(wait),
                reason: "the push service failed repeatedly; its circuit is open".into(),
            };
        }
        let now = Utc::now();
        let payload = AlertPayload {
            alert_id: alert.id,
            title: alert.title.clone(),
            body: alert.body.clone(),
            url: alert.url.clone(),
            article_id: alert.article_id,
            story_id: alert.story_id,
            topic: topic.to_owned(),
            image_url: alert.image_url.clone(),
            sent_at: now,
            version: alert.version,
            silent: alert.silent,
            tag: alert.story_key().to_string(),
            retracted: alert.state == AlertState::Retracted,
        };
        // A replacement of a finished alert still lives as long as the alert's TTL allows from
        // now: it only matters while the reader might look at the old one.
        let ttl = u32::try_from((alert.expires_at() - now).num_seconds())
            .unwrap_or(0)
            .max(if alert.version > 1 {
                alert.ttl_seconds.max(60) as u32
            } else {
                0
            });
        let opts = MessageOptions::presented(
            &payload,
            parse_urgency(&alert.urgency),
            ttl,
            &inner.config.presentation,
        );
        let send = inner.senders.send(&device.address, &payload, &opts);
        let outcome = match deadline {
            Some(deadline) => tokio::time::timeout(deadline, send)
                .await
                .unwrap_or_else(|_| {
                    DeliveryOutcome::retry(format!("no answer within {} ms", deadline.as_millis()))
                }),
            None => send.await,
        };
        inner
            .breakers
            .record(&origin, !matches!(outcome, DeliveryOutcome::Retry { .. }));
        outcome
    }

    /// What an attempt comes to: an outcome to record, or a retry at a later time (backoff with
    /// jitter, at least the service's `Retry-After`, at most `retry_max_seconds`) when that
    /// time is still within the alert's TTL.
    async fn conclude(
        &self,
        alert: &QueuedAlert,
        device: &Device,
        topic: String,
        attempts: u32,
        outcome: DeliveryOutcome,
    ) -> Attempted {
        let inner = &self.inner;
        let channel = channel(&device.address);
        let record = |status, reason| {
            Attempted::Done(DeliveryRecord {
                user_id: device.user_id,
                device_id: device.id,
                status,
                reason,
                attempts,
                at: Utc::now(),
                version: alert.version,
                topic: Some(topic.clone()),
            })
        };
        match outcome {
            DeliveryOutcome::Sent => {
                inner.metrics.count(channel, "sent");
                let latency = (Utc::now() - alert.created_at).num_milliseconds().max(0);
                inner.metrics.latency.observe(latency as f64 / 1000.0);
                record(DeliveryStatus::Sent, None)
            }
            DeliveryOutcome::Gone => {
                inner.metrics.count(channel, "pruned");
                let reason = "the push service says the device is gone";
                if let Err(err) = devices::mark_dead(&inner.db, device.id, reason).await {
                    tracing::warn!(device = %device.id, error = %err, "cannot mark device dead");
                }
                record(DeliveryStatus::Pruned, Some(reason.into()))
            }
            DeliveryOutcome::Failed { reason } => {
                inner.metrics.count(channel, "failed");
                record(DeliveryStatus::Failed, Some(reason))
            }
            DeliveryOutcome::Retry { after, reason } => {
                let delay = retry_delay(&inner.settings, attempts, after);
                let due_at =
                    Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                if due_at >= alert.expires_at() {
                    inner.metrics.count(channel, "failed");
                    let reason = format!("TTL ran out after {attempts} attempt(s): {reason}");
                    return record(DeliveryStatus::Failed, Some(reason));
                }
                inner.metrics.count(channel, "retried");
                tracing::debug!(device = %device.id, ?delay, %reason, "delivery will be retried");
                Attempted::Deferred(NewRetry {
                    device_id: device.id,
                    user_id: device.user_id,
                    topic,
                    attempts,
                    due_at,
                    reason,
                    kind: RetryKind::Retry,
                })
            }
        }
    }

    /// Drains the retry queue for this process until `stop`: leases due retries (any
    /// notifier's, once their lease lapsed) and gives each device its next attempt, up to
    /// `concurrency` at once. Each retry runs on its own, so a slow one never holds the others:
    /// the loop leases more as soon as a slot frees.
    async fn retry_loop(&self, stop: &CancellationToken) {
        let inner = &self.inner;
        let owner = format!("{}-retries", inner.owner);
        let slots = Arc::new(tokio::sync::Semaphore::new(
            inner.settings.concurrency.max(1),
        ));
        let mut running = tokio::task::JoinSet::new();
        while !stop.is_cancelled() {
            while running.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = running.join_next() => {}
                }
                continue;
            }
            let leased =
                retries::lease_due(&inner.db, &owner, inner.settings.lease_for, free as u64).await;
            match leased {
                Ok(due) if due.is_empty() => pause(stop, inner.settings.idle_poll).await,
                Ok(due) => {
                    for retry in due {
                        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                            break;
                        };
                        let (this, owner, stop) = (self.clone(), owner.clone(), stop.clone());
                        running.spawn(async move {
                            this.retry(retry, &owner, &stop).await;
                            drop(slot);
                        });
                    }
                }
                Err(err) => wait_out(stop, &err).await,
            }
        }
        // Running retries see `stop` and end; unfinished ones are leased again after a lapse.
        while running.join_next().await.is_some() {}
    }

    /// One retry: re-checks that the alert and the device still want it, sends, and records
    /// the outcome or puts it back for later.
    async fn retry(&self, retry: DueRetry, owner: &str, stop: &CancellationToken) {
        let db = &self.inner.db;
        let alert = match queue::alert(db, retry.alert_id).await {
            Ok(alert) => alert,
            Err(err) => {
                tracing::warn!(alert = %retry.alert_id, error = %err, "cannot read a retry's alert");
                return;
            }
        };
        if retry.kind == RetryKind::Replace {
            self.replace(&alert, &retry, owner, stop).await;
            return;
        }
        let outcome = match &retry.device {
            // Cancelled or expired meanwhile, or the device is gone: nothing to send or record.
            _ if !alert.state.is_active() => None,
            None => None,
            Some(device) => match queue::still_targeted(db, device.id, &alert.topics).await {
                Ok(false) => {
                    self.inner
                        .metrics
                        .count(channel(&device.address), "unfollowed");
                    Some(Attempted::Done(DeliveryRecord {
                        user_id: device.user_id,
                        device_id: device.id,
                        status: DeliveryStatus::Unfollowed,
                        reason: None,
                        attempts: retry.attempts,
                        at: Utc::now(),
                        version: alert.version,
                        topic: None,
                    }))
                }
                Ok(true) => {
                    let attempts = retry.attempts + 1;
                    let sent = tokio::select! {
                        // The lease lapses and another notifier (or this one, restarted) retries.
                        _ = stop.cancelled() => return,
                        sent = self.attempt(&alert, device, &retry.topic, None) => sent,
                    };
                    Some(
                        self.conclude(&alert, device, retry.topic.clone(), attempts, sent)
                            .await,
                    )
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot re-check a retry's device");
                    return;
                }
            },
        };
        let result = match outcome {
            Some(Attempted::Deferred(next)) => {
                retries::reschedule(db, &retry, owner, next.attempts, next.due_at, &next.reason)
                    .await
            }
            Some(Attempted::Done(record)) => {
                retries::resolve(db, &alert, &retry, owner, Some(record)).await
            }
            Some(Attempted::Interrupted) | None => {
                retries::resolve(db, &alert, &retry, owner, None).await
            }
        };
        if let Err(err) = result {
            tracing::warn!(alert = %alert.id, device = %retry.device_id, error = %err, "cannot record a retry");
        }
    }

    /// Sends a device the alert as it is now, replacing the older version it shows: quietly
    /// (an update is silent unless the editor said otherwise), not counted against the daily
    /// cap, held back in quiet hours like an alert.
    async fn replace(
        &self,
        alert: &QueuedAlert,
        retry: &DueRetry,
        owner: &str,
        stop: &CancellationToken,
    ) {
        let inner = &self.inner;
        let db = &inner.db;
        let outcome = match &retry.device {
            _ if !alert.state.replaces() => None,
            None => Some(Replacement::Failed),
            Some(device) => {
                let targets = match devices::with_preferences(db, vec![device.clone()]).await {
                    Ok(targets) => targets,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot read a replacement's device");
                        return;
                    }
                };
                let rules = AlertRules::new(&inner.config, &alert.urgency);
                let held = targets.first().and_then(|t| rules.hold(t, &[], Utc::now()))
                    == Some(Hold::QuietHours);
                if held {
                    inner
                        .metrics
                        .count(channel(&device.address), "replace_held");
                    Some(Replacement::HeldQuietHours)
                } else {
                    let topic = if retry.topic.is_empty() {
                        alert.topics.first().cloned().unwrap_or_default()
                    } else {
                        retry.topic.clone()
                    };
                    let sent = tokio::select! {
                        _ = stop.cancelled() => return,
                        sent = self.attempt(alert, device, &topic, None) => sent,
                    };
                    let channel = channel(&device.address);
                    match sent {
                        DeliveryOutcome::Sent => {
                            inner.metrics.count(channel, "replaced");
                            Some(Replacement::Replaced(alert.version))
                        }
                        DeliveryOutcome::Retry { after, reason } => {
                            let attempts = retry.attempts + 1;
                            let delay = retry_delay(&inner.settings, attempts, after);
                            let due_at = Utc::now()
                                + chrono::Duration::from_std(delay)
                                    .unwrap_or(chrono::Duration::MAX);
                            if attempts < REPLACE_ATTEMPTS {
                                inner.metrics.count(channel, "retried");
                                if let Err(err) =
                                    retries::reschedule(db, retry, owner, attempts, due_at, &reason)
                                        .await
                                {
                                    tracing::warn!(error = %err, "cannot reschedule a replacement");
                                }
                                return;
                            }
                            inner.metrics.count(channel, "replace_failed");
                            Some(Replacement::Failed)
                        }
                        DeliveryOutcome::Gone => {
                            inner.metrics.count(channel, "pruned");
                            let reason = "the push service says the device is gone";
                            if let Err(err) = devices::mark_dead(db, device.id, reason).await {
                                tracing::warn!(device = %device.id, error = %err, "cannot mark device dead");
                            }
                            Some(Replacement::Failed)
                        }
                        DeliveryOutcome::Failed { .. } => {
                            inner.metrics.count(channel, "replace_failed");
                            Some(Replacement::Failed)
                        }
                    }
                }
            }
        };
        let result = match outcome {
            Some(outcome) => {
                queue::record_replacement(db, alert.id, retry.device_id, owner, outcome).await
            }
            None => retries::resolve(db, alert, retry, owner, None).await,
        };
        let result = match result {
            Ok(()) => queue::finish_if_idle(db, alert.id).await,
            err => err,
        };
        if let Err(err) = result {
            tracing::warn!(alert = %alert.id, device = %retry.device_id, error = %err, "cannot record a replacement");
        }
    }
}

/// A leased batch decided up to the send: the devices to send to, and what keeps its lease.
struct Prepared {
    lease: Lease,
    sends: Vec<(Target, String)>,
    /// Cancelled when the lease is lost or the alert stops being deliverable.
    batch_stop: CancellationToken,
    lost: Arc<AtomicBool>,
    _heartbeat: AbortOnDrop,
}

/// Stops a spawned task when dropped, so a dropped step never leaves its heartbeat renewing.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease every third of its length; cancels the batch when the lease is lost or the
/// alert stopped being deliverable (cancelled, expired).
async fn heartbeat(
    db: Db,
    lease: Lease,
    lease_for: Duration,
    batch_stop: CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let every = (lease_for / 3).max(Duration::from_millis(100));
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = batch_stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match queue::renew(&db, &lease, lease_for).await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                batch_stop.cancel();
                return;
            }
            Err(err) => {
                tracing::warn!(batch = %lease.batch_id, error = %err, "cannot renew lease");
                if lease_may_lapse(renewed.elapsed(), every, lease_for) {
                    // Another notifier may take the batch over before the next renewal could
                    // land: stop sending it rather than send it twice.
                    tracing::warn!(batch = %lease.batch_id, "lease about to lapse unrenewed; stopping the batch");
                    lost.store(true, Ordering::SeqCst);
                    batch_stop.cancel();
                    return;
                }
            }
        }
    }
}

/// Whether a lease last renewed `since_renewal` ago could lapse before the next renewal,
/// `every` from now, lands.
fn lease_may_lapse(since_renewal: Duration, every: Duration, lease_for: Duration) -> bool {
    since_renewal + every >= lease_for
}

/// Waits `wait`, or less when `stop` is cancelled.
/// How often a notifier process looks for newly breaking stories between its sweeps.
const TRIGGER_EVERY: Duration = Duration::from_millis(200);

/// Attempts at one replacement before it counts as failed.
const REPLACE_ATTEMPTS: u32 = 5;

/// A local delivery time this close is now.
const LOCAL_TIME_SLACK: chrono::Duration = chrono::Duration::seconds(5);

/// True, and the clock restarted, when `last` is at least `every` ago (or never).
fn due(last: &std::sync::Mutex<Option<Instant>>, every: Duration) -> bool {
    let mut last = last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let due = last.is_none_or(|at| at.elapsed() >= every);
    if due {
        *last = Some(Instant::now());
    }
    due
}

async fn pause(stop: &CancellationToken, wait: Duration) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

/// Logs a failed step and waits a second before the next (database trouble is waited out).
async fn wait_out(stop: &CancellationToken, err: &StoreError) {
    tracing::warn!(error = %err, "notifier step failed; retrying shortly");
    pause(stop, Duration::from_secs(1)).await;
}

/// Parses an alert, story or article id as typed on a command line.
pub fn parse_id(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|e| format!("`{text}` is not an id: {e}"))
}

/// The RFC 8030 urgency of a stored alert urgency (`normal` when unknown).
pub fn parse_urgency(text: &str) -> Urgency {
    match text {
        "high" => Urgency::High,
        "low" => Urgency::Low,
        "very-low" => Urgency::VeryLow,
        _ => Urgency::Normal,
    }
}

/// The push service a device's messages go to, for its circuit breaker: the endpoint's origin
/// for Web Push, the service itself for FCM and APNs.
fn origin(address: &DeviceAddress) -> String {
    match address {
        DeviceAddress::WebPush { endpoint, .. } => Url::parse(endpoint)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_else(|_| endpoint.clone()),
        DeviceAddress::Fcm { .. } => "fcm".into(),
        DeviceAddress::Apns { .. } => "apns".into(),
    }
}

fn channel(address: &DeviceAddress) -> &'static str {
    match address {
        DeviceAddress::WebPush { .. } => "webpush",
        DeviceAddress::Fcm { .. } => "fcm",
        DeviceAddress::Apns { .. } => "apns",
    }
}

/// `base · 2^(attempt-1)` capped at `max`, scaled by a random factor in [0.5, 1], and never
/// sooner than the push service's `Retry-After`.
pub fn retry_delay(
    settings: &FanoutSettings,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let backoff = settings
        .retry_base
        .saturating_mul(1u32 << exponent)
        .min(settings.retry_max);
    let jittered = backoff.mul_f64(rand::random_range(0.5..=1.0));
    // A service's Retry-After is honoured up to the cap: an endpoint asking for a day does not
    // keep its delivery (and the alert) waiting a day.
    retry_after.map_or(jittered, |after| {
        after.min(settings.retry_max).max(jittered)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stops_when_its_lease_could_lapse_before_the_next_renewal() {
        let lease = Duration::from_secs(30);
        let every = lease / 3;
        assert!(!lease_may_lapse(Duration::from_secs(10), every, lease));
        assert!(!lease_may_lapse(Duration::from_secs(19), every, lease));
        assert!(lease_may_lapse(Duration::from_secs(20), every, lease));
    }

    #[test]
    fn retry_delay_grows_and_honours_retry_after() {
        let settings = FanoutSettings::default();
        for attempt in 1..=12 {
            let d = retry_delay(&settings, attempt, None);
            let full = settings
                .retry_base
                .saturating_mul(1 << (attempt - 1))
                .min(settings.retry_max);
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?}");
        }
        let d = retry_delay(&settings, 1, Some(Duration::from_secs(2)));
        assert!(d >= Duration::from_secs(2));
        // A Retry-After of a day is capped at retry_max.
        let d = retry_delay(&settings, 1, Some(Duration::from_secs(86_400)));
        assert_eq!(d, settings.retry_max);
        assert_eq!(parse_urgency("high"), Urgency::High);
        assert_eq!(parse_urgency("whatever"), Urgency::Normal);
    }
}
