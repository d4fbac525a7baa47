//! The WebSub subscriber's callback (W3C WebSub §5.3 and §7): the hub's verification of
//! intent (GET) and its content distribution (POST) for `/websub/{source}/{token}`.
//!
//! The token is the unguessable per-subscription part of the callback URL. A verified body is
//! queued durably for the ingest role, which runs it through the same parse → normalise →
//! dedupe → cluster → breaking path as a poll; this process only checks and stores it.

use crate::extract::Path;
use crate::{ApiError, AppState};
use aws_lc_rs::{constant_time, hmac};
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use herald_store::websub::{self, Enqueued, VerifyMode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The header a hub signs content distribution with (W3C WebSub §8).
const SIGNATURE_HEADER: &str = "x-hub-signature";

/// Longest `hub.challenge` echoed back.
const MAX_CHALLENGE_BYTES: usize = 1024;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(verify_intent, distribute))
}

/// The hub's request parameters, read from the query string.
struct HubQuery {
    mode: String,
    topic: String,
    challenge: Option<String>,
    lease_seconds: Option<u32>,
    reason: Option<String>,
}

impl HubQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let (mut mode, mut topic, mut challenge, mut lease, mut reason) =
            (None, None, None, None, None);
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "hub.mode" => mode = Some(value),
                "hub.topic" => topic = Some(value),
                "hub.challenge" => challenge = Some(value),
                "hub.lease_seconds" => lease = Some(value),
                "hub.reason" => reason = Some(value),
                _ => {}
            }
        }
        let mode = mode.ok_or_else(|| ApiError::BadRequest("hub.mode is missing".into()))?;
        let topic = topic.ok_or_else(|| ApiError::BadRequest("hub.topic is missing".into()))?;
        let lease_seconds = lease
            .map(|l| {
                l.trim().parse::<u32>().map_err(|_| {
                    ApiError::BadRequest("hub.lease_seconds is not a whole number".into())
                })
            })
            .transpose()?;
        Ok(Self {
            mode,
            topic,
            challenge,
            lease_seconds,
            reason,
        })
    }
}

fn source_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("no such subscription".into()))
}

/// The hub's verification of intent: echoes `hub.challenge` only for a pending subscription
/// (or unsubscription) of ours with this topic; records a denial.
#[utoipa::path(
    get,
    path = "/websub/{source}/{token}",
    tag = "websub",
    params(
        ("source" = Uuid, Path, description = "The source subscribed to"),
        ("token" = String, Path, description = "The subscription's unguessable callback token"),
        ("hub.mode" = String, Query, description = "`subscribe`, `unsubscribe` or `denied`"),
        ("hub.topic" = String, Query, description = "The topic URL the request was for"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back to confirm (subscribe, unsubscribe)"),
        ("hub.lease_seconds" = Option<u32>, Query, description = "The lease the hub granted (subscribe)"),
        ("hub.reason" = Option<String>, Query, description = "Why the hub denied the subscription (denied)"),
    ),
    responses(
        (status = 200, description = "Confirmed: the body is `hub.challenge` (empty for a denial)",
            body = String, content_type = "text/plain"),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::NotFound),
    )
)]
async fn verify_intent(
    State(state): State<AppState>,
    Path((source, token)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let source = source_id(&source)?;
    let query = HubQuery::parse(query.as_deref())?;
    let now = Utc::now();
    let not_ours = || ApiError::NotFound("no pending request of ours matches".into());
    let mode = match query.mode.as_str() {
        "subscribe" => VerifyMode::Subscribe,
        "unsubscribe" => VerifyMode::Unsubscribe,
        "denied" => {
            let ours = websub::deny(
                &state.db,
                source,
                &token,
                &query.topic,
                query.reason.as_deref(),
                now,
            )
            .await?;
            if !ours {
                return Err(not_ours());
            }
            tracing::warn!(%source, reason = ?query.reason, "websub subscription denied by the hub");
            return Ok(StatusCode::OK.into_response());
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "hub.mode `{other}` is not subscribe, unsubscribe or denied"
            )));
        }
    };
    let challenge = query
        .challenge
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::BadRequest("hub.challenge is missing".into()))?;
    if challenge.len() > MAX_CHALLENGE_BYTES {
        return Err(ApiError::BadRequest("hub.challenge is too long".into()));
    }
    if mode == VerifyMode::Subscribe && query.lease_seconds.is_none() {
        return Err(ApiError::BadRequest(
            "hub.lease_seconds is missing from a subscription's verification".into(),
        ));
    }
    let confirmed = websub::verify(
        &state.db,
        source,
        &token,
        mode,
        &query.topic,
        query.lease_seconds,
        now,
    )
    .await?;
    if !confirmed {
        return Err(not_ours());
    }
    tracing::info!(%source, ?mode, lease_seconds = ?query.lease_seconds, "websub request verified");
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        challenge,
    )
        .into_response())
}

/// Why a pushed body's signature is not accepted.
#[derive(Debug, PartialEq, Eq)]
enum SignatureRefusal {
    Missing,
    Malformed,
    Algorithm(String),
    Mismatch,
}

/// Checks `X-Hub-Signature: method=hex` against an HMAC of `body` under `secret`: sha256,
/// sha384 and sha512 are accepted, sha1 only when `accept_sha1`.
fn check_signature(
    headers: &HeaderMap,
    secret: &[u8],
    body: &[u8],
    accept_sha1: bool,
) -> Result<(), SignatureRefusal> {
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or(SignatureRefusal::Missing)?
        .to_str()
        .map_err(|_| SignatureRefusal::Malformed)?;
    let (method, hex_digest) = value
        .trim()
        .split_once('=')
        .ok_or(SignatureRefusal::Malformed)?;
    let algorithm = match method.to_ascii_lowercase().as_str() {
        "sha256" => hmac::HMAC_SHA256,
        "sha384" => hmac::HMAC_SHA384,
        "sha512" => hmac::HMAC_SHA512,
        "sha1" if accept_sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        other => return Err(SignatureRefusal::Algorithm(other.to_owned())),
    };
    let given = decode_hex(hex_digest.trim()).ok_or(SignatureRefusal::Malformed)?;
    let key = hmac::Key::new(algorithm, secret);
    let expected = hmac::sign(&key, body);
    constant_time::verify_slices_are_equal(expected.as_ref(), &given)
        .map_err(|_| SignatureRefusal::Mismatch)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The hub's content distribution: a body signed with the subscription's secret is queued for
/// ingestion (202). A body whose signature is missing, wrong or made with a refused algorithm
/// is not ingested and is counted; as W3C WebSub §8 requires, the hub still gets a 2xx, so it
/// cannot tell a forgery from a delivery.
#[utoipa::path(
    post,
    path = "/websub/{source}/{token}",
    tag = "websub",
    params(
        ("source" = Uuid, Path, description = "The source subscribed to"),
        ("token" = String, Path, description = "The subscription's unguessable callback token"),
        ("X-Hub-Signature" = String, Header, description = "`sha256=<hex HMAC of the body>` (sha384, sha512; sha1 only when `http.websub_accept_sha1`)"),
    ),
    request_body(content = String, description = "The feed document (Atom, RSS or JSON Feed)",
        content_type = "application/atom+xml"),
    responses(
        (status = 202, description = "Received: queued for ingestion when the signature is valid, else ignored"),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 404, response = crate::openapi::NotFound),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::ValidationFailed),
        (status = 429, response = crate::openapi::TooManyRequests),
    )
)]
async fn distribute(
    State(state): State<AppState>,
    Path((source, token)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let source = source_id(&source)?;
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Read up to the configured limit and no further, whatever the global body limit is.
    let body = axum::body::to_bytes(body, state.http.websub_max_body_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let now = Utc::now();
    let subscription = websub::get(&state.db, source)
        .await?
        .filter(|s| {
            constant_time::verify_slices_are_equal(s.callback_token.as_bytes(), token.as_bytes())
                .is_ok()
        })
        .ok_or_else(|| ApiError::NotFound("no such subscription".into()))?;
    if !subscription.delivers(now) {
        return Err(ApiError::NotFound(
            "this subscription is not active; it is not delivered to".into(),
        ));
    }
    if let Err(refusal) = check_signature(
        &headers,
        subscription.secret.expose().as_bytes(),
        &body,
        state.http.websub_accept_sha1,
    ) {
        tracing::warn!(%source, ?refusal, bytes = body.len(), "websub delivery refused: bad signature");
        websub::count_rejected(&state.db, source).await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::Validation(vec![crate::FieldError::new(
            "body",
            "is empty; a delivery carries the feed document",
        )]));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match websub::enqueue(
        &state.db,
        source,
        body.to_vec(),
        content_type,
        now,
        state.http.websub_max_backlog,
    )
    .await?
    {
        Enqueued::Queued(id) => {
            tracing::debug!(%source, delivery = %id, bytes = body.len(), "websub delivery queued");
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Enqueued::Backlogged => Err(ApiError::TooManyRequests {
            retry_after_seconds: 30,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(method: &str, algorithm: hmac::Algorithm, secret: &[u8], body: &[u8]) -> HeaderMap {
        let tag = hmac::sign(&hmac::Key::new(algorithm, secret), body);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            format!("{method}={hex}").parse().expect("header"),
        );
        headers
    }

    #[test]
    fn signatures_are_checked_by_algorithm() {
        let (secret, body) = (b"s3cret".as_slice(), b"<feed/>".as_slice());
        for (method, algorithm) in [
            ("sha256", hmac::HMAC_SHA256),
            ("sha384", hmac::HMAC_SHA384),
            ("sha512", hmac::HMAC_SHA512),
        ] {
            let headers = signed(method, algorithm, secret, body);
            assert_eq!(check_signature(&headers, secret, body, false), Ok(()));
            assert_eq!(
                check_signature(&headers, b"other", body, false),
                Err(SignatureRefusal::Mismatch)
            );
            assert_eq!(
                check_signature(&headers, secret, b"<feed>x</feed>", false),
                Err(SignatureRefusal::Mismatch)
            );
        }
        let sha1 = signed("sha1", hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret, body);
        assert_eq!(
            check_signature(&sha1, secret, body, false),
            Err(SignatureRefusal::Algorithm("sha1".into()))
        );
        assert_eq!(check_signature(&sha1, secret, body, true), Ok(()));
        assert_eq!(
            check_signature(&HeaderMap::new(), secret, body, true),
            Err(SignatureRefusal::Missing)
        );
        let mut bad = HeaderMap::new();
        bad.insert(SIGNATURE_HEADER, "sha256=zz".parse().expect("header"));
        assert_eq!(
            check_signature(&bad, secret, body, true),
            Err(SignatureRefusal::Malformed)
        );
        bad.insert(SIGNATURE_HEADER, "sha256".parse().expect("header"));
        assert_eq!(
            check_signature(&bad, secret, body, true),
            Err(SignatureRefusal::Malformed)
        );
    }

    #[test]
    fn hub_queries_are_read() {
        let q = HubQuery::parse(Some(
            "hub.mode=subscribe&hub.topic=https%3A%2F%2Fa.example%2Ffeed&hub.challenge=abc&hub.lease_seconds=60",
        ))
        .expect("valid");
        assert_eq!(q.mode, "subscribe");
        assert_eq!(q.topic, "https://a.example/feed");
        assert_eq!(q.challenge.as_deref(), Some("abc"));
        assert_eq!(q.lease_seconds, Some(60));
        assert!(HubQuery::parse(Some("hub.topic=x")).is_err());
        assert!(
            HubQuery::parse(Some("hub.mode=subscribe&hub.topic=x&hub.lease_seconds=-1")).is_err()
        );
        assert!(HubQuery::parse(None).is_err());
    }
}
