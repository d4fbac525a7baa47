//! Faults to inject: a push service with an outage, and a database restart as its clients see
//! it (every connection of a test database killed at once).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use herald_store::testing::{TEST_DATABASE_URL_VAR, TestDb};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A Web Push service that answers `500` to everything until its outage ends, then `201`,
/// counting the `201`s per endpoint. It does not decrypt: the protocol is checked by the real
/// fakes in `herald-notifier`; this one is about what a fan-out does while a service is down.
pub struct FlakyPushService {
    base_url: String,
    state: Arc<OutageState>,
}

struct OutageState {
    down_until: Mutex<Instant>,
    refused: AtomicUsize,
    delivered: Mutex<HashMap<String, usize>>,
}

impl FlakyPushService {
    /// Starts the service on 127.0.0.1, down for `outage` from now.
    pub async fn start(outage: Duration) -> Self {
        let state = Arc::new(OutageState {
            down_until: Mutex::new(Instant::now() + outage),
            refused: AtomicUsize::new(0),
            delivered: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/push/{*id}", post(receive))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base_url: format!("http://{addr}"),
            state,
        }
    }

    /// The endpoint prefix: a device's endpoint is this followed by its own id.
    pub fn endpoint_base(&self) -> String {
        format!("{}/push/", self.base_url)
    }

    /// Ends (or extends) the outage: down for `outage` from now.
    pub fn down_for(&self, outage: Duration) {
        *self.state.down_until.lock().expect("lock") = Instant::now() + outage;
    }

    /// Requests answered `500`.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// `201`s per endpoint id (the path after `/push/`).
    pub fn delivered(&self) -> HashMap<String, usize> {
        self.state.delivered.lock().expect("lock").clone()
    }
}

async fn receive(State(state): State<Arc<OutageState>>, Path(id): Path<String>) -> StatusCode {
    if Instant::now() < *state.down_until.lock().expect("lock") {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *state.delivered.lock().expect("lock").entry(id).or_insert(0) += 1;
    StatusCode::CREATED
}

/// Kills every PostgreSQL connection of `test_db` (its sessions carry the schema's name as
/// `application_name`), as a server restart would, without touching anyone else's: the number
/// killed. `None` on SQLite.
pub async fn kill_connections(test_db: &TestDb) -> Option<u64> {
    use sea_orm::{ConnectionTrait, Database};
    let url = std::env::var(TEST_DATABASE_URL_VAR).ok()?;
    let schema = test_db.config().schema?;
    // The killer's own connection has no such name, so it survives its own statement.
    let admin = Database::connect(url.as_str()).await.ok()?;
    let sql = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND pid <> pg_backend_pid()",
        schema.replace('\'', "")
    );
    let killed = admin.query_all_raw(sea_orm::Statement::from_string(
        admin.get_database_backend(),
        sql,
    ));
    let killed = killed.await.ok()?.len() as u64;
    admin.close().await.ok()?;
    Some(killed)
}

/// Restarts the PostgreSQL server with `command` (e.g. `pg_ctlcluster 15 main restart`), for the
/// documented fault run only: every session of every database goes, so nothing else may be
/// using the server. True when the command succeeded.
pub async fn restart_postgres(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let Some(program) = words.next() else {
        return false;
    };
    let args: Vec<String> = words.map(str::to_owned).collect();
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(program)
            .args(args)
            .status()
            .is_ok_and(|status| status.success())
    })
    .await
    .unwrap_or(false)
}
