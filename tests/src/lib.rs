//! End-to-end tests: the real app on a random port over real HTTP.
//!
//! [`TestApp::spawn`] runs `herald::serve` with every role on 127.0.0.1:0 against a fresh
//! database (a temporary SQLite file, or a fresh PostgreSQL schema when
//! `HERALD_TEST_DATABASE_URL` is set) and stops it when dropped.

use herald::config::Config;
use herald::roles::Roles;
use herald_store::testing::TestDb;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod accounts;
pub mod browser;
pub mod faults;
pub mod newsroom;
pub mod oidc;
pub mod websub_hub;

/// The topics every test app knows, and no publishers.
pub const TEST_CATALOG: &str = r#"
[[topics]]
slug = "world"
name = "World"
description = "International news"
keywords = ["summit", "ceasefire"]
min_sources = 3
window_minutes = 120

[[topics]]
slug = "india"
name = "India"
description = "News from India"
keywords = ["india", "mumbai"]
min_sources = 3
window_minutes = 120

[[topics]]
slug = "business"
name = "Business"
description = "Companies and markets"
keywords = ["shares", "earnings"]
min_sources = 3
window_minutes = 180
"#;

/// A running Herald and a client for it.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client with no default headers.
    pub client: reqwest::Client,
    /// The configuration it runs with.
    pub config: Config,
    /// Its database, dropped after the app.
    pub db: TestDb,
    stop: CancellationToken,
    _catalog: tempfile::TempDir,
    server: Option<JoinHandle<Result<(), String>>>,
}

impl TestApp {
    /// Starts Herald with the test configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts Herald after `adjust` has changed the test configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let mut config = Config::default();
        config.database = db.config();
        config.http.shutdown_grace_seconds = 5;
        // Tests read their own writes at once; the read cache has its own test.
        config.http.read_cache_ms = 0;
        // Every test client comes from 127.0.0.1: the per-address limits on new accounts and
        // devices would stop a test that creates many readers; their own tests lower them.
        config.auth.signups_per_address_per_hour = 100_000;
        config.push.devices_per_address_per_hour = 100_000;
        // Local fakes listen on loopback over plain HTTP.
        config.push.allow_insecure_endpoints = true;
        config.ingest.allow_private_addresses = true;
        // Topics only: tests never poll real publishers.
        let catalog = tempfile::tempdir().expect("temp dir");
        let catalog_file = catalog.path().join("sources.toml");
        std::fs::write(&catalog_file, TEST_CATALOG).expect("write the test catalogue");
        config.catalog.sources_file = Some(catalog_file);
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let server = tokio::spawn({
            let config = config.clone();
            async move {
                herald::serve(config, Roles::all(), Some(listener), async move {
                    stopped.cancelled().await
                })
                .await
                .map_err(|e| format!("{e:#}"))
            }
        });
        let app = Self {
            addr,
            client: reqwest::Client::new(),
            config,
            db,
            stop,
            _catalog: catalog,
            server: Some(server),
        };
        app.wait_until_ready().await;
        app
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// POST `body` as JSON to `path`.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Sends `method` to `path` with `token` as the bearer and `body`, if any, as JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the request is sent")
    }

    /// Polls `GET /v1/admin/alerts/{id}` as `editor` until the alert leaves `queued` and
    /// `sending`; its last status. Fails after `within`, showing the status.
    pub async fn finished_alert(
        &self,
        id: &str,
        editor: &str,
        within: std::time::Duration,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            let status: serde_json::Value = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/admin/alerts/{id}"),
                    editor,
                    None,
                )
                .await
                .json()
                .await
                .expect("the alert's status");
            if !matches!(status["state"].as_str(), Some("queued" | "sending")) {
                return status;
            }
            assert!(start.elapsed() < within, "the alert is still {status}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// A new anonymous reader (`POST /v1/auth/anonymous`) following `topic`: their access token.
    pub async fn reader_following(&self, topic: &str) -> String {
        let body: serde_json::Value = self
            .post_json("/v1/auth/anonymous", &serde_json::json!({}))
            .await
            .json()
            .await
            .expect("the sign-up answer");
        let token = body["access_token"]
            .as_str()
            .expect("an access token")
            .to_string();
        let followed = self
            .call(
                reqwest::Method::POST,
                "/v1/me/subscriptions",
                &token,
                Some(serde_json::json!({"topic": topic})),
            )
            .await;
        assert!(
            followed.status().is_success(),
            "follow {topic}: {}",
            followed.status()
        );
        token
    }

    /// Stops the app and waits for it to exit; returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), String> {
        self.stop.cancel();
        match self.server.take() {
            Some(server) => server.await.map_err(|e| e.to_string())?,
            None => Ok(()),
        }
    }

    async fn wait_until_ready(&self) {
        for _ in 0..200 {
            let response = self.client.get(self.url("/readyz")).send().await;
            if response.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if self.server.as_ref().is_some_and(|s| s.is_finished()) {
                panic!("herald exited during start-up");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("herald did not become ready within 5 s");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
