//! A local WebSub hub and publisher that follow the W3C WebSub Recommendation, for tests.
//!
//! - `POST /hub` takes subscription requests (§5.1): answers 202 and then verifies intent
//!   (§5.3) with a GET to the callback carrying `hub.challenge`, confirming only when the
//!   subscriber echoes it; grants at most `max_lease` seconds; removes on unsubscribe.
//! - [`FakeHub::publish`] distributes content (§7) to every subscriber whose lease has not run
//!   out, signed with `X-Hub-Signature: sha256=<HMAC of the body>` under its `hub.secret` (§8).
//! - `GET /feeds/{name}` serves the publisher's feed documents.
//! - `/public/{*path}` forwards to the app under test (set with [`FakeHub::forward_to`]), so a
//!   callback URL can be given before the app's port is known, as a reverse proxy would.

use aws_lc_rs::hmac;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How the hub signs a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// `sha256=` HMAC with the subscriber's secret (what the spec asks for).
    Sha256,
    /// `sha1=` HMAC with the subscriber's secret (legacy hubs).
    Sha1,
    /// `sha256=` HMAC with a secret that is not the subscriber's.
    WrongSecret,
    /// No `X-Hub-Signature` header.
    Unsigned,
}

/// One active subscription the hub holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSubscription {
    /// The topic URL.
    pub topic: String,
    /// The subscriber's callback URL.
    pub callback: String,
    /// The secret the subscriber gave.
    pub secret: Option<String>,
    /// The lease granted, in seconds.
    pub lease_seconds: u64,
    /// When the lease runs out.
    pub expires: Instant,
}

/// Something the hub did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A subscription request arrived and was answered with `status`.
    Requested {
        /// `subscribe` or `unsubscribe`.
        mode: String,
        /// The topic.
        topic: String,
        /// The callback.
        callback: String,
        /// The hub's answer.
        status: u16,
    },
    /// A verification of intent was sent.
    Verified {
        /// `subscribe`, `unsubscribe` or `denied`.
        mode: String,
        /// The callback.
        callback: String,
        /// The subscriber's status.
        status: u16,
        /// The subscriber echoed the challenge.
        confirmed: bool,
    },
    /// Content was distributed.
    Delivered {
        /// The callback.
        callback: String,
        /// The subscriber's status.
        status: u16,
    },
}

#[derive(Default)]
struct HubState {
    feeds: HashMap<String, String>,
    subscriptions: Vec<HubSubscription>,
    events: Vec<HubEvent>,
    upstream: Option<SocketAddr>,
    max_lease: Option<u64>,
    refuse_requests: bool,
}

/// The hub and publisher.
#[derive(Clone)]
pub struct FakeHub {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<HubState>>,
    client: reqwest::Client,
}

type Shared = (Arc<Mutex<HubState>>, reqwest::Client);

impl FakeHub {
    /// Starts the hub on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(HubState::default()));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new()
            .route("/hub", post(hub_request))
            .route("/feeds/{name}", get(serve_feed))
            .route("/public/{*path}", any(forward))
            .with_state((state.clone(), client.clone()));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            addr,
            state,
            client,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub's URL.
    pub fn hub_url(&self) -> String {
        format!("http://{}/hub", self.addr)
    }

    /// The URL of the feed `name`.
    pub fn feed_url(&self, name: &str) -> String {
        format!("http://{}/feeds/{name}", self.addr)
    }

    /// The public base URL that forwards to the app (see [`FakeHub::forward_to`]).
    pub fn public_url(&self) -> String {
        format!("http://{}/public/", self.addr)
    }

    /// Forwards `/public/*` to `app`.
    pub fn forward_to(&self, app: SocketAddr) {
        self.lock().upstream = Some(app);
    }

    /// Grants leases of at most `seconds`.
    pub fn set_max_lease(&self, seconds: u64) {
        self.lock().max_lease = Some(seconds);
    }

    /// Answers subscription requests with 503 (a hub that stopped answering) when `refuse`.
    pub fn refuse_requests(&self, refuse: bool) {
        self.lock().refuse_requests = refuse;
    }

    /// Sets the document served at `/feeds/{name}`.
    pub fn set_feed(&self, name: &str, body: &str) {
        self.lock().feeds.insert(name.to_owned(), body.to_owned());
    }

    /// What the hub did so far.
    pub fn events(&self) -> Vec<HubEvent> {
        self.lock().events.clone()
    }

    /// The subscriptions of `topic` whose lease has not run out.
    pub fn subscribers(&self, topic: &str) -> Vec<HubSubscription> {
        let now = Instant::now();
        self.lock()
            .subscriptions
            .iter()
            .filter(|s| s.topic == topic && s.expires > now)
            .cloned()
            .collect()
    }

    /// Publishes `body` as the new version of feed `name` and distributes it, signed as
    /// `signing` says, to every subscriber of its URL whose lease has not run out; returns
    /// their statuses.
    pub async fn publish(&self, name: &str, body: &str, signing: Signing) -> Vec<u16> {
        self.set_feed(name, body);
        let topic = self.feed_url(name);
        let mut statuses = Vec::new();
        for sub in self.subscribers(&topic) {
            let status = self.deliver(&sub, body, signing).await;
            statuses.push(status);
        }
        statuses
    }

    /// Distributes `body` to one subscriber (§7).
    pub async fn deliver(&self, sub: &HubSubscription, body: &str, signing: Signing) -> u16 {
        let mut request = self
            .client
            .post(&sub.callback)
            .header("content-type", "application/atom+xml")
            .header(
                "link",
                format!(
                    "<{}>; rel=\"hub\", <{}>; rel=\"self\"",
                    self.hub_url(),
                    sub.topic
                ),
            )
            .body(body.to_owned());
        let secret = sub.secret.clone().unwrap_or_default();
        let signature = match signing {
            Signing::Sha256 => Some(("sha256", sign(hmac::HMAC_SHA256, &secret, body))),
            Signing::Sha1 => Some((
                "sha1",
                sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret, body),
            )),
            Signing::WrongSecret => Some(("sha256", sign(hmac::HMAC_SHA256, "not-it", body))),
            Signing::Unsigned => None,
        };
        if let Some((method, hex)) = signature {
            request = request.header("x-hub-signature", format!("{method}={hex}"));
        }
        let status = request.send().await.map_or(0, |r| r.status().as_u16());
        self.lock().events.push(HubEvent::Delivered {
            callback: sub.callback.clone(),
            status,
        });
        status
    }

    /// Tells a subscriber its subscription is refused (`hub.mode=denied`, §5.2).
    pub async fn deny(&self, topic: &str, callback: &str, reason: &str) -> u16 {
        let url = with_query(
            callback,
            &[
                ("hub.mode", "denied"),
                ("hub.topic", topic),
                ("hub.reason", reason),
            ],
        );
        let status = self
            .client
            .get(url)
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        let mut state = self.lock();
        state
            .subscriptions
            .retain(|s| !(s.topic == topic && s.callback == callback));
        state.events.push(HubEvent::Verified {
            mode: "denied".into(),
            callback: callback.to_owned(),
            status,
            confirmed: false,
        });
        status
    }
}

fn sign(algorithm: hmac::Algorithm, secret: &str, body: &str) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(algorithm, secret.as_bytes()),
        body.as_bytes(),
    );
    hex::encode(tag.as_ref())
}

fn with_query(callback: &str, pairs: &[(&str, &str)]) -> String {
    let query: String = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let joiner = if callback.contains('?') { '&' } else { '?' };
    format!("{callback}{joiner}{query}")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                Some(Ok(b)) => {
                    out.push(b);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k), decode(v)))
        })
        .collect()
}

/// §5.1: a subscription request; 202 and then an asynchronous verification of intent.
async fn hub_request(State((state, client)): State<Shared>, body: String) -> Response {
    let params = form(&body);
    let (Some(mode), Some(topic), Some(callback)) = (
        params.get("hub.mode").cloned(),
        params.get("hub.topic").cloned(),
        params.get("hub.callback").cloned(),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "hub.mode, hub.topic and hub.callback are required",
        )
            .into_response();
    };
    let refused = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .refuse_requests;
    let valid = matches!(mode.as_str(), "subscribe" | "unsubscribe")
        && callback.starts_with("http")
        && topic.starts_with("http");
    let status = if refused {
        StatusCode::SERVICE_UNAVAILABLE
    } else if valid {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    };
    state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .events
        .push(HubEvent::Requested {
            mode: mode.clone(),
            topic: topic.clone(),
            callback: callback.clone(),
            status: status.as_u16(),
        });
    if status == StatusCode::ACCEPTED {
        let requested: u64 = params
            .get("hub.lease_seconds")
            .and_then(|l| l.parse().ok())
            .unwrap_or(86_400);
        let secret = params.get("hub.secret").cloned();
        tokio::spawn(verify_intent(
            state.clone(),
            client,
            mode,
            topic,
            callback,
            secret,
            requested,
        ));
    }
    status.into_response()
}

/// §5.3: GET the callback with a challenge; the subscriber must echo it.
async fn verify_intent(
    state: Arc<Mutex<HubState>>,
    client: reqwest::Client,
    mode: String,
    topic: String,
    callback: String,
    secret: Option<String>,
    requested: u64,
) {
    let lease = {
        let s = state.lock().unwrap_or_else(PoisonError::into_inner);
        s.max_lease.map_or(requested, |max| requested.min(max))
    };
    let challenge = format!("challenge-{:016x}", rand_u64());
    let lease_text = lease.to_string();
    let mut pairs = vec![
        ("hub.mode", mode.as_str()),
        ("hub.topic", topic.as_str()),
        ("hub.challenge", challenge.as_str()),
    ];
    if mode == "subscribe" {
        pairs.push(("hub.lease_seconds", lease_text.as_str()));
    }
    let url = with_query(&callback, &pairs);
    let (status, echoed) = match client.get(url).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            (status, body == challenge)
        }
        Err(_) => (0, false),
    };
    let confirmed = (200..300).contains(&status) && echoed;
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    if confirmed {
        s.subscriptions
            .retain(|sub| !(sub.topic == topic && sub.callback == callback));
        if mode == "subscribe" {
            s.subscriptions.push(HubSubscription {
                topic,
                callback: callback.clone(),
                secret,
                lease_seconds: lease,
                expires: Instant::now() + Duration::from_secs(lease),
            });
        }
    }
    s.events.push(HubEvent::Verified {
        mode,
        callback,
        status,
        confirmed,
    });
}

fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap_or(());
    u64::from_le_bytes(bytes)
}

async fn serve_feed(State((state, _)): State<Shared>, Path(name): Path<String>) -> Response {
    let body = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .feeds
        .get(&name)
        .cloned();
    match body {
        Some(body) => ([("content-type", "application/atom+xml")], body).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A reverse proxy to the app under test.
async fn forward(
    State((state, client)): State<Shared>,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let upstream = state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .upstream;
    let Some(upstream) = upstream else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut url = format!("http://{upstream}/{path}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(&query);
    }
    let mut request = client.request(method, url).body(body);
    for name in ["content-type", "x-hub-signature", "link"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.clone());
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let content_type = response.headers().get("content-type").cloned();
            let body = response.bytes().await.unwrap_or_default();
            let mut out = (status, body).into_response();
            if let Some(ct) = content_type {
                out.headers_mut().insert("content-type", ct);
            }
            out
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
