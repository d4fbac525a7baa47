//! The herald binary and the library that assembles and starts the app.
//!
//! `main` only parses arguments; [`serve`] connects, migrates and runs the roles asked for
//! under one supervisor until `shutdown` resolves, so tests can start the real app on port 0.

pub mod alert_command;
pub mod catalog;
pub mod config;
pub mod demo;
pub mod roles;
pub mod telemetry;

use anyhow::Context;
use config::Config;
use herald_api::{App, AppState, HttpMetrics};
use prometheus_client::registry::Registry;
use roles::{Role, Roles};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Connects to the configured database and applies pending migrations, or, with
/// `database.migrate_on_start = false`, waits until another process has applied them.
pub async fn open_database(config: &Config) -> anyhow::Result<herald_store::Db> {
    let db = herald_store::connect(&config.database)
        .await
        .with_context(|| format!("cannot open the database at {}", config.database.url))?;
    if config.database.migrate_on_start {
        herald_store::migrate::up(&db)
            .await
            .context("cannot apply database migrations")?;
        return Ok(db);
    }
    let mut waited = Duration::ZERO;
    loop {
        let pending = herald_store::migrate::pending(&db)
            .await
            .context("cannot read the migration state")?;
        if pending == 0 {
            return Ok(db);
        }
        if waited.as_secs().is_multiple_of(10) {
            tracing::info!(
                pending,
                waited_seconds = waited.as_secs(),
                "waiting for `herald migrate up` (database.migrate_on_start is false)"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        waited += Duration::from_secs(1);
    }
}

/// Runs the roles in `roles` until `shutdown` resolves or a role fails, then stops them:
/// the API stops accepting and finishes in-flight requests within the grace period,
/// background roles finish their current step.
pub async fn serve(
    config: Config,
    roles: Roles,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    let keyring = open_keyring(&config, &db).await?;
    let accounts = herald_auth::Accounts::start(
        db.clone(),
        config.auth.clone(),
        outbound_client()?,
        &keyring,
    )
    .await
    .context("cannot load the token signing keys")?;
    let catalog = catalog::Catalog::load(config.catalog.sources_file.as_deref())?;
    herald_store::topics::sync(&db, &catalog.topics())
        .await
        .context("cannot sync topics")?;
    herald_store::sources::sync(&db, &catalog.sources())
        .await
        .context("cannot sync sources")?;
    let vapid = vapid_keys(&db, &keyring).await?;
    let mut registry = Registry::with_prefix("herald");
    let http_metrics = HttpMetrics::register(&mut registry);
    let notifier_metrics = herald_notifier::fanout::FanoutMetrics::register(&mut registry);
    let grace = Duration::from_secs(config.http.shutdown_grace_seconds);
    let ingest_beat = roles
        .has(Role::Ingest)
        .then(|| herald_store::Heartbeat::new("ingest"));
    let notifier_beat = roles
        .has(Role::Notifier)
        .then(|| herald_store::Heartbeat::new("notifier"));
    let vapid_public_key = vapid.public_key_base64url();
    // One set of senders: the notifier fans out with them, the api sends editors' tests.
    let senders = match herald_notifier::fanout::Senders::from_config(&config.push, vapid) {
        Ok(senders) => senders,
        Err(err) if !roles.has(Role::Notifier) => {
            tracing::warn!(error = %err, "push senders are not set up; test sends will fail");
            herald_notifier::fanout::Senders::default()
        }
        Err(err) => return Err(anyhow::Error::new(err).context("cannot set up the push senders")),
    };
    let state = AppState(Arc::new(App {
        db: db.clone(),
        http: config.http.clone(),
        registry,
        http_metrics,
        accounts,
        push: config.push.clone(),
        vapid_public_key: vapid_public_key.clone(),
        cursor_key: herald_api::CursorKey::load_or_create(&db, &keyring).await?,
        read_cache: herald_api::ReadCache::new(Duration::from_millis(config.http.read_cache_ms)),
        loops: ingest_beat.iter().chain(&notifier_beat).cloned().collect(),
        senders: senders.clone(),
    }));

    let stop = CancellationToken::new();
    let mut tasks: JoinSet<(Role, anyhow::Result<()>)> = JoinSet::new();

    // Every process listens, whatever its roles, so it can be probed and scraped; only the
    // api role serves the API and the web faces.
    let listener = match listener {
        Some(listener) => listener,
        None => TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.listen))?,
    };
    let addr = listener.local_addr()?;
    let router = if roles.has(Role::Api) {
        tracing::info!(%addr, "api listening on http://{addr}");
        let web = herald_web::WebState(Arc::new(herald_web::Web {
            db: db.clone(),
            config: config.web.clone(),
            vapid_public_key,
            cursor_key: state.cursor_key.clone(),
        }));
        let pages = herald_web::reader_router(web.clone()).merge(herald_web::console_router(web));
        herald_api::router_with(state.clone(), pages)
    } else {
        tracing::info!(%addr, "probes and metrics on http://{addr} (/healthz, /readyz, /metrics)");
        herald_api::probes_router(state.clone())
    };
    let stopped = stop.clone();
    tasks.spawn(async move {
        let result = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stopped.cancelled().await })
        .await
        .context("the HTTP server failed");
        (Role::Api, result)
    });
    if let Some(heartbeat) = ingest_beat {
        let (db, mut ingest, stopped) = (db.clone(), config.ingest.clone(), stop.clone());
        // WebSub callbacks go to the api's public address; without one WebSub stays off.
        ingest.websub.public_url = config.http.public_url.clone();
        let topics = herald_store::topics::list(&db)
            .await
            .context("cannot load topics")?;
        tasks.spawn(async move {
            let result = herald_ingest::scheduler::run(db, ingest, topics, heartbeat, stopped)
                .await
                .context("feed ingestion failed");
            (Role::Ingest, result)
        });
    }
    if let Some(heartbeat) = notifier_beat {
        let (db, push, stopped) = (db.clone(), config.push.clone(), stop.clone());
        tasks.spawn(async move {
            let result = herald_notifier::fanout::run(
                db,
                push,
                senders,
                notifier_metrics,
                heartbeat,
                stopped,
            )
            .await
            .context("the notifier failed");
            (Role::Notifier, result)
        });
    }
    tracing::info!(roles = %roles, database = %config.database.url, "herald started");

    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_on_signal.cancel();
    });

    let mut failure = None;
    tokio::select! {
        _ = stop.cancelled() => {}
        Some(joined) = tasks.join_next() => {
            match joined {
                Ok((role, Err(err))) => failure = Some(err.context(format!("the {role} role failed"))),
                Ok((role, Ok(()))) => tracing::warn!(%role, "role stopped on its own"),
                Err(err) => failure = Some(anyhow::anyhow!("a role panicked: {err}")),
            }
        }
    }
    tracing::info!(grace_seconds = grace.as_secs(), "shutting down");
    stop.cancel();
    let drained = tokio::time::timeout(grace, async {
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((role, Err(err))) => {
                    tracing::error!(%role, error = %err, "role failed while stopping")
                }
                Ok((role, Ok(()))) => tracing::debug!(%role, "role stopped"),
                Err(err) => tracing::error!(error = %err, "role panicked while stopping"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("roles still busy after the grace period; stopping them now");
        tasks.shutdown().await;
    }
    let _ = db.close().await;
    tracing::info!("herald stopped");
    failure.map_or(Ok(()), Err)
}

/// Creates a password account with a role, as `herald user create` does.
pub async fn create_user(
    db: &herald_store::Db,
    email: &str,
    password: &str,
    role: herald_store::users::Role,
    display_name: Option<String>,
) -> anyhow::Result<herald_store::users::User> {
    let email = herald_auth::Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    let password =
        herald_auth::Password::parse(password).map_err(|e| anyhow::anyhow!("the password {e}"))?;
    let hash = herald_auth::hash_password(password).await?;
    herald_store::users::create(
        db,
        herald_store::users::NewUser {
            email: Some(email.to_string()),
            display_name,
            password_hash: Some(hash),
            role,
            is_anonymous: false,
        },
    )
    .await
    .map_err(|e| match e {
        herald_store::StoreError::Conflict(_) => {
            anyhow::anyhow!("an account with the email {email} exists; use `herald user set-role`")
        }
        other => other.into(),
    })
}

/// Changes an account's role, as `herald user set-role` does, and ends all its sessions at
/// once: its access tokens stop working on their next request and its refresh tokens are spent.
pub async fn set_role(
    db: &herald_store::Db,
    email: &str,
    role: herald_store::users::Role,
) -> anyhow::Result<herald_store::users::User> {
    let email = herald_auth::Email::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
    herald_store::users::set_role_by_email(db, email.as_str(), role)
        .await
        .map_err(|e| match e {
            herald_store::StoreError::NotFound => {
                anyhow::anyhow!("no account has the email {email}")
            }
            other => other.into(),
        })
}

/// The key that seals private keys in the database ([`herald_auth::sealing`]), after
/// re-sealing under it every stored key that is not yet (plaintext from before a key was
/// configured, or sealed under a key being rotated out).
pub async fn open_keyring(
    config: &Config,
    db: &herald_store::Db,
) -> anyhow::Result<herald_auth::Keyring> {
    let keyring = herald_auth::Keyring::open(
        &config.secrets,
        config.database.url.sqlite_path().as_deref(),
    )
    .context("cannot load the key that encrypts private keys at rest")?;
    if !keyring.encrypts() {
        tracing::warn!(
            "private keys are stored unencrypted in the database; set secrets.key \
             (HERALD__SECRETS__KEY) or secrets.key_file to encrypt them"
        );
        return Ok(keyring);
    }
    let resealed = keyring
        .reseal_all(db)
        .await
        .context("cannot encrypt the stored private keys")?;
    if resealed > 0 {
        tracing::info!(
            resealed,
            keys = keyring.source(),
            "stored private keys encrypted under the current key"
        );
    }
    Ok(keyring)
}

/// The VAPID key pair, created on first start and kept (sealed by `keyring`) in the database.
pub async fn vapid_keys(
    db: &herald_store::Db,
    keyring: &herald_auth::Keyring,
) -> anyhow::Result<herald_notifier::webpush::VapidKeys> {
    use herald_notifier::webpush::VapidKeys;
    let stored = keyring
        .load_or_create(db, "vapid", || {
            let keys = VapidKeys::generate()?;
            let public_key = keys.public_key().to_vec();
            Ok::<_, herald_notifier::webpush::VapidError>(herald_store::keys::StoredKey {
                id: format!("vapid-{}", hex::encode(&public_key[1..9])),
                purpose: "vapid".into(),
                algorithm: "ES256".into(),
                private_der: herald_store::Secret::new(keys.to_pkcs8()?),
                public_key,
                created_at: chrono::Utc::now(),
            })
        })
        .await
        .map_err(|e| anyhow::anyhow!("cannot load or create the VAPID keys: {e}"))?;
    VapidKeys::from_pkcs8(stored.private_der.expose())
        .map_err(|e| anyhow::anyhow!("stored VAPID key unusable: {e}"))
}

/// The HTTP client for calls Herald makes to the outside (identity providers' keys).
pub fn outbound_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")
}
