//! An FCM HTTP v1 service: an OAuth token endpoint that checks RS256 assertions, and `messages:send`.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::{Scripted, Scripts, ServerTask, lock};
use crate::config::PushConfig;
use crate::send::fcm::{FCM_SCOPE, JWT_BEARER_GRANT};
use crate::send::{FcmServiceAccount, SetupError};

/// Project id of the fake's service account.
pub const PROJECT_ID: &str = "herald-test";
/// E-mail of the fake's service account.
pub const CLIENT_EMAIL: &str = "herald-push@herald-test.iam.gserviceaccount.com";

/// Generates a throwaway service-account JSON with a fresh RSA-2048 key; also returns the PKCS#1 public key.
pub fn generate_service_account(
    project_id: &str,
    client_email: &str,
    token_uri: &str,
) -> io::Result<(String, Vec<u8>)> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| io::Error::other("RSA key generation failed"))?;
    let pkcs8: Pkcs8V1Der<'static> = key
        .as_der()
        .map_err(|_| io::Error::other("PKCS#8 export failed"))?;
    let json = json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": uuid::Uuid::new_v4().simple().to_string(),
        "private_key": super::pem("PRIVATE KEY", pkcs8.as_ref()),
        "client_email": client_email,
        "client_id": "100000000000000000000",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    });
    Ok((json.to_string(), key.public_key().as_ref().to_vec()))
}

/// One message the fake accepted.
#[derive(Debug, Clone)]
pub struct ReceivedFcmMessage {
    /// `message.token`.
    pub device_token: String,
    /// The whole request body.
    pub body: serde_json::Value,
    /// The bearer token it carried.
    pub access_token: String,
    /// The status the fake answered with (`None`: it hung).
    pub status: Option<u16>,
}

impl ReceivedFcmMessage {
    /// `message.data.<key>`.
    pub fn data(&self, key: &str) -> Option<&str> {
        self.body["message"]["data"][key].as_str()
    }
}

struct FcmState {
    token_url: String,
    decoding_key: DecodingKey,
    token_lifetime_secs: AtomicU64,
    token_requests: AtomicUsize,
    issued: Mutex<HashMap<String, Instant>>,
    messages: Mutex<Vec<ReceivedFcmMessage>>,
    scripts: Scripts,
}

/// A local FCM: `POST /token` and `POST /v1/projects/{id}/messages:send`.
pub struct FakeFcm {
    base_url: String,
    token_url: String,
    service_account_json: String,
    state: Arc<FcmState>,
    _server: ServerTask,
}

impl FakeFcm {
    /// Starts the service on an ephemeral port with a fresh service account.
    pub async fn start() -> io::Result<Self> {
        // The token URL goes into the service account before the router exists, so bind first.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let token_url = format!("{base_url}/token");
        let (service_account_json, public_key) =
            generate_service_account(PROJECT_ID, CLIENT_EMAIL, &token_url)?;
        let state = Arc::new(FcmState {
            token_url: token_url.clone(),
            decoding_key: DecodingKey::from_rsa_der(&public_key),
            token_lifetime_secs: AtomicU64::new(3600),
            token_requests: AtomicUsize::new(0),
            issued: Mutex::new(HashMap::new()),
            messages: Mutex::new(Vec::new()),
            scripts: Scripts::default(),
        });
        let router = Router::new()
            .route("/token", post(issue_token))
            .route("/v1/projects/{project}/messages:send", post(send_message))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "fake FCM stopped");
            }
        });
        Ok(Self {
            base_url,
            token_url,
            service_account_json,
            state,
            _server: ServerTask(task),
        })
    }

    /// The service-account key file contents for this fake.
    pub fn service_account_json(&self) -> &str {
        &self.service_account_json
    }

    /// The parsed service account.
    pub fn service_account(&self) -> Result<FcmServiceAccount, SetupError> {
        FcmServiceAccount::from_json(&self.service_account_json)
    }

    /// The FCM base URL (`fcm.base_url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token endpoint (`fcm.token_url`).
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Points `config` at this fake (and allows its plain-http loopback address).
    pub fn configure(&self, config: &mut PushConfig) {
        config.allow_insecure_endpoints = true;
        config.fcm.enabled = true;
        config.fcm.base_url = self.base_url.clone();
        config.fcm.token_url = self.token_url.clone();
    }

    /// The `expires_in` of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state
            .token_lifetime_secs
            .store(lifetime.as_secs(), Ordering::SeqCst);
    }

    /// Invalidates every issued access token, as if they had expired early.
    pub fn revoke_tokens(&self) {
        lock(&self.state.issued).clear();
    }

    /// How many access tokens were issued.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Every accepted message, in arrival order.
    pub fn messages(&self) -> Vec<ReceivedFcmMessage> {
        lock(&self.state.messages).clone()
    }

    /// Queues answers for `device_token`; each message takes the next one, then 200.
    pub fn script(&self, device_token: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.state.scripts.push(device_token, answers);
    }

    /// FCM's answer for a token that is no longer registered.
    pub fn unregistered() -> Scripted {
        Self::error(
            404,
            "NOT_FOUND",
            "UNREGISTERED",
            "Requested entity was not found.",
        )
    }

    /// An FCM error answer with `status` and an `FcmError` detail `error_code`.
    pub fn error(code: u16, status: &str, error_code: &str, message: &str) -> Scripted {
        Scripted::json(
            code,
            &json!({"error": {
                "code": code,
                "message": message,
                "status": status,
                "details": [{
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": error_code,
                }],
            }}),
        )
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    scope: String,
}

async fn issue_token(State(state): State<Arc<FcmState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let oauth_error = |error: &str, description: String| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER_GRANT) {
        return oauth_error("unsupported_grant_type", "expected jwt-bearer".to_owned());
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error("invalid_request", "missing assertion".to_owned());
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[&state.token_url]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = match jsonwebtoken::decode::<AssertionClaims>(
        assertion,
        &state.decoding_key,
        &validation,
    ) {
        Ok(data) => data.claims,
        Err(e) => return oauth_error("invalid_grant", e.to_string()),
    };
    if !claims.scope.split(' ').any(|s| s == FCM_SCOPE) {
        return oauth_error("invalid_scope", claims.scope);
    }
    let n = state.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let lifetime = state.token_lifetime_secs.load(Ordering::SeqCst);
    let token = format!("fake-fcm-token-{n}-{}", uuid::Uuid::new_v4().simple());
    lock(&state.issued).insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    axum::Json(json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
        .into_response()
}

async fn send_message(
    State(state): State<Arc<FcmState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = |code: u16, status: &str, message: &str| {
        let answer = Scripted::json(
            code,
            &json!({"error": {"code": code, "message": message, "status": status}}),
        );
        async move { answer.into_response().await }
    };
    if project != PROJECT_ID {
        return error(404, "NOT_FOUND", "unknown project").await;
    }
    let access_token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let valid = lock(&state.issued)
        .get(&access_token)
        .is_some_and(|expiry| Instant::now() < *expiry);
    if !valid {
        return error(401, "UNAUTHENTICATED", "invalid or expired access token").await;
    }
    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(400, "INVALID_ARGUMENT", "body is not JSON").await;
    };
    let Some(device_token) = message["message"]["token"].as_str().map(str::to_owned) else {
        return error(400, "INVALID_ARGUMENT", "message.token is required").await;
    };
    let data_ok = match &message["message"]["data"] {
        serde_json::Value::Null => true,
        serde_json::Value::Object(map) => map.values().all(serde_json::Value::is_string),
        _ => false,
    };
    if !data_ok {
        return error(400, "INVALID_ARGUMENT", "data values must be strings").await;
    }
    // FCM's limit: 4,000 bytes of notification and data together.
    let notification = &message["message"]["notification"];
    let size = message["message"]["data"].to_string().len()
        + [
            &notification["title"],
            &notification["body"],
            &notification["image"],
        ]
        .iter()
        .filter_map(|v| v.as_str())
        .map(str::len)
        .sum::<usize>();
    if size > 4000 {
        return error(400, "INVALID_ARGUMENT", "Message is too big").await;
    }
    let android = &message["message"]["android"];
    let priority_ok = match &android["notification"]["notification_priority"] {
        serde_json::Value::Null => true,
        serde_json::Value::String(p) => matches!(
            p.as_str(),
            "PRIORITY_MIN" | "PRIORITY_LOW" | "PRIORITY_DEFAULT" | "PRIORITY_HIGH" | "PRIORITY_MAX"
        ),
        _ => false,
    };
    if !priority_ok
        || !matches!(android["priority"], serde_json::Value::Null)
            && !matches!(android["priority"].as_str(), Some("normal" | "high"))
    {
        return error(400, "INVALID_ARGUMENT", "invalid android priority").await;
    }
    let scripted = state.scripts.next(&device_token);
    let n = {
        let mut messages = lock(&state.messages);
        messages.push(ReceivedFcmMessage {
            device_token,
            body: message,
            access_token,
            status: scripted.as_ref().map_or(Some(200), Scripted::status_code),
        });
        messages.len()
    };
    match scripted {
        Some(answer) => answer.into_response().await,
        None => axum::Json(json!({"name": format!("projects/{PROJECT_ID}/messages/{n}")}))
            .into_response(),
    }
}
