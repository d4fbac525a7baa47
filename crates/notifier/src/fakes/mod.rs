//! Local push services that speak the real protocols, for tests: Web Push, FCM and APNs.
//!
//! Each binds `127.0.0.1:0`, records what it accepted, and can be scripted to fail per device.
//! Point a [`PushConfig`](crate::config::PushConfig) at them with their `configure` methods.

pub mod apns;
pub mod fcm;
pub mod webpush;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use http::{HeaderName, HeaderValue, StatusCode};
use tokio::task::JoinHandle;

pub use apns::{FakeApns, ReceivedApns};
pub use fcm::{FakeFcm, ReceivedFcmMessage, generate_service_account};
pub use webpush::{FakeSubscription, FakeWebPush, ReceivedPush};

/// One scripted answer a fake gives instead of its normal success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// Answer with this status, headers and body.
    Respond {
        /// HTTP status code.
        status: u16,
        /// Extra response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: String,
    },
    /// Never answer, so the client times out.
    Hang,
}

impl Scripted {
    /// A bare status.
    pub fn status(status: u16) -> Self {
        Self::Respond {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// A status with `Retry-After: <seconds>`.
    pub fn retry_after(status: u16, seconds: u64) -> Self {
        Self::Respond {
            status,
            headers: vec![("retry-after".to_owned(), seconds.to_string())],
            body: String::new(),
        }
    }

    /// A status with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::Respond {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
        }
    }

    /// The status this answer will have, or `None` for [`Scripted::Hang`].
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Respond { status, .. } => Some(*status),
            Self::Hang => None,
        }
    }

    /// Produces the response (for `Hang`, after an hour).
    pub(crate) async fn into_response(self) -> Response {
        match self {
            Self::Respond {
                status,
                headers,
                body,
            } => {
                let mut response = body.into_response();
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::try_from(name.as_str()),
                        HeaderValue::try_from(value.as_str()),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
                response
            }
            Self::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
        }
    }
}

/// Per-device queues of scripted answers; an empty queue means success.
#[derive(Debug, Default)]
pub(crate) struct Scripts(Mutex<HashMap<String, VecDeque<Scripted>>>);

impl Scripts {
    pub(crate) fn push(&self, key: &str, answers: impl IntoIterator<Item = Scripted>) {
        lock(&self.0)
            .entry(key.to_owned())
            .or_default()
            .extend(answers);
    }

    pub(crate) fn next(&self, key: &str) -> Option<Scripted> {
        lock(&self.0).get_mut(key).and_then(VecDeque::pop_front)
    }
}

/// Locks a fake's state; a panicking test thread leaves it usable for the assertions that follow.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A served router that stops when dropped.
#[derive(Debug)]
pub(crate) struct ServerTask(JoinHandle<()>);

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `router` on `127.0.0.1:0` (HTTP/1.1 and cleartext HTTP/2 with prior knowledge).
pub(crate) async fn serve(router: Router) -> io::Result<(SocketAddr, ServerTask)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!(error = %e, "fake push service stopped");
        }
    });
    Ok((addr, ServerTask(task)))
}

/// PEM-encodes DER with 64-character lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = BASE64_STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
