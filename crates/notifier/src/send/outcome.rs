//! What a push service's answer means for the device: sent, gone, retry later, or failed.

use std::time::{Duration, SystemTime};

use http::StatusCode;
use serde::Deserialize;

/// The result of one delivery attempt to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The push service accepted the message.
    Sent,
    /// The device is no longer reachable; prune it.
    Gone,
    /// A transient failure; try again, no sooner than `after` when the service said so.
    Retry {
        /// The service's `Retry-After`, if it sent one.
        after: Option<Duration>,
        /// What went wrong, for the delivery log.
        reason: String,
    },
    /// A permanent failure for this message; record the reason.
    Failed {
        /// What went wrong, for the delivery log.
        reason: String,
    },
}

impl DeliveryOutcome {
    /// A retry without a service-given delay.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            after: None,
            reason: reason.into(),
        }
    }

    /// A permanent failure.
    pub fn failed(reason: impl Into<String>) -> Self {
        Self::Failed {
            reason: reason.into(),
        }
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date (a date in the past means no delay).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The answer shared by all services: 429 and 5xx retry; 404 and 410 mean the device is gone.
fn classify_common(
    status: StatusCode,
    retry_after: Option<&str>,
    reason: String,
    now: SystemTime,
) -> DeliveryOutcome {
    if status.is_success() {
        DeliveryOutcome::Sent
    } else if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
        DeliveryOutcome::Gone
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        DeliveryOutcome::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason,
        }
    } else {
        DeliveryOutcome::Failed { reason }
    }
}

/// Classifies an RFC 8030 push service response.
pub fn classify_webpush(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &str,
    now: SystemTime,
) -> DeliveryOutcome {
    classify_common(status, retry_after, describe(status, body), now)
}

#[derive(Deserialize)]
struct FcmErrorBody {
    error: FcmError,
}

#[derive(Deserialize)]
struct FcmError {
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<FcmErrorDetail>,
}

#[derive(Deserialize)]
struct FcmErrorDetail {
    #[serde(rename = "errorCode", default)]
    error_code: Option<String>,
}

/// Classifies an FCM HTTP v1 `messages:send` response, including its `UNREGISTERED` error code.
pub fn classify_fcm(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &str,
    now: SystemTime,
) -> DeliveryOutcome {
    let error = serde_json::from_str::<FcmErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = error.as_ref().and_then(|e| {
        e.details
            .iter()
            .find_map(|d| d.error_code.as_deref())
            .or(Some(e.status.as_str()).filter(|s| !s.is_empty()))
    });
    if !status.is_success() && code == Some("UNREGISTERED") {
        return DeliveryOutcome::Gone;
    }
    let reason = match (&error, code) {
        (Some(e), Some(code)) => format!("{status}: {code}: {}", e.message),
        _ => describe(status, body),
    };
    classify_common(status, retry_after, reason, now)
}

#[derive(Deserialize)]
struct ApnsErrorBody {
    reason: String,
}

/// Classifies an APNs provider API response; `Unregistered` and `BadDeviceToken` mean gone.
pub fn classify_apns(
    status: StatusCode,
    retry_after: Option<&str>,
    body: &str,
    now: SystemTime,
) -> DeliveryOutcome {
    let reason = apns_reason(body);
    if !status.is_success() && matches!(reason.as_deref(), Some("Unregistered" | "BadDeviceToken"))
    {
        return DeliveryOutcome::Gone;
    }
    let reason = match reason {
        Some(reason) => format!("{status}: {reason}"),
        None => describe(status, body),
    };
    classify_common(status, retry_after, reason, now)
}

/// The `reason` of an APNs error body.
pub fn apns_reason(body: &str) -> Option<String> {
    serde_json::from_str::<ApnsErrorBody>(body)
        .ok()
        .map(|b| b.reason)
}

/// Classifies a request that got no HTTP response (timeout, refused connection, TLS failure).
pub fn classify_transport_error(error: &reqwest::Error) -> DeliveryOutcome {
    if let Some(forbidden) = find_source::<herald_netguard::Refusal>(error) {
        return DeliveryOutcome::failed(forbidden.to_string());
    }
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    DeliveryOutcome::retry(format!("{what}: {}", error_chain(error)))
}

fn find_source<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// `"<status>: <first 200 characters of the body>"`.
fn describe(status: StatusCode, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return status.to_string();
    }
    let end = body
        .char_indices()
        .nth(200)
        .map_or(body.len(), |(index, _)| index);
    format!("{status}: {}", &body[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        httpdate::parse_http_date("Sun, 01 Mar 2026 12:00:00 GMT").unwrap()
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn retry_after_forms() {
        let cases: &[(&str, Option<Duration>)] = &[
            ("2", secs(2)),
            (" 120 ", secs(120)),
            ("Sun, 01 Mar 2026 12:00:30 GMT", secs(30)),
            ("Sunday, 01-Mar-26 12:01:00 GMT", secs(60)),
            ("Sun Mar  1 12:00:05 2026", secs(5)),
            ("Sun, 01 Mar 2026 11:00:00 GMT", Some(Duration::ZERO)),
            ("-1", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now()), *expected, "{value:?}");
        }
    }

    fn code(c: u16) -> StatusCode {
        StatusCode::from_u16(c).unwrap()
    }

    fn kind(outcome: &DeliveryOutcome) -> &'static str {
        match outcome {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Gone => "gone",
            DeliveryOutcome::Retry { .. } => "retry",
            DeliveryOutcome::Failed { .. } => "failed",
        }
    }

    #[test]
    fn webpush_table() {
        let cases: &[(u16, Option<&str>, &str, &str)] = &[
            (201, None, "", "sent"),
            (200, None, "", "sent"),
            (202, None, "", "sent"),
            (404, None, "", "gone"),
            (410, None, "push subscription has unsubscribed", "gone"),
            (429, Some("2"), "", "retry"),
            (500, None, "", "retry"),
            (502, None, "", "retry"),
            (503, Some("Sun, 01 Mar 2026 12:00:10 GMT"), "", "retry"),
            (400, None, "bad request", "failed"),
            (401, None, "", "failed"),
            (403, None, "", "failed"),
            (413, None, "payload too large", "failed"),
        ];
        for (status, retry_after, body, expected) in cases {
            let outcome = classify_webpush(code(*status), *retry_after, body, now());
            assert_eq!(kind(&outcome), *expected, "{status}");
        }
        assert_eq!(
            classify_webpush(code(429), Some("2"), "", now()),
            DeliveryOutcome::Retry {
                after: secs(2),
                reason: "429 Too Many Requests".to_owned()
            }
        );
        assert_eq!(
            classify_webpush(code(413), None, "too big", now()),
            DeliveryOutcome::failed("413 Payload Too Large: too big")
        );
    }

    #[test]
    fn fcm_table() {
        let unregistered = r#"{"error": {"code": 404, "message": "Requested entity was not found.",
            "status": "NOT_FOUND", "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": "UNREGISTERED"}]}}"#;
        let unregistered_400 = r#"{"error": {"code": 400, "message": "x", "status": "INVALID_ARGUMENT",
            "details": [{"errorCode": "UNREGISTERED"}]}}"#;
        let invalid = r#"{"error": {"code": 400, "message": "The registration token is not a valid FCM registration token",
            "status": "INVALID_ARGUMENT", "details": [{"errorCode": "INVALID_ARGUMENT"}]}}"#;
        let quota = r#"{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
            "details": [{"errorCode": "QUOTA_EXCEEDED"}]}}"#;
        let unavailable = r#"{"error": {"code": 503, "message": "x", "status": "UNAVAILABLE"}}"#;
        let mismatch = r#"{"error": {"code": 403, "message": "x", "status": "PERMISSION_DENIED",
            "details": [{"errorCode": "SENDER_ID_MISMATCH"}]}}"#;
        let cases: &[(u16, Option<&str>, &str, &str)] = &[
            (200, None, r#"{"name": "projects/p/messages/1"}"#, "sent"),
            (404, None, unregistered, "gone"),
            (400, None, unregistered_400, "gone"),
            (404, None, "", "gone"),
            (410, None, "", "gone"),
            (400, None, invalid, "failed"),
            (403, None, mismatch, "failed"),
            (429, Some("7"), quota, "retry"),
            (503, None, unavailable, "retry"),
            (500, None, "oops", "retry"),
        ];
        for (status, retry_after, body, expected) in cases {
            let outcome = classify_fcm(code(*status), *retry_after, body, now());
            assert_eq!(kind(&outcome), *expected, "{status} {body}");
        }
        assert_eq!(
            classify_fcm(code(429), Some("7"), quota, now()),
            DeliveryOutcome::Retry {
                after: secs(7),
                reason: "429 Too Many Requests: QUOTA_EXCEEDED: quota".to_owned()
            }
        );
        assert_eq!(
            classify_fcm(code(403), None, mismatch, now()),
            DeliveryOutcome::failed("403 Forbidden: SENDER_ID_MISMATCH: x")
        );
    }

    #[test]
    fn apns_table() {
        let cases: &[(u16, Option<&str>, &str, &str)] = &[
            (200, None, "", "sent"),
            (
                410,
                None,
                r#"{"reason": "Unregistered", "timestamp": 1}"#,
                "gone",
            ),
            (400, None, r#"{"reason": "BadDeviceToken"}"#, "gone"),
            (
                400,
                None,
                r#"{"reason": "DeviceTokenNotForTopic"}"#,
                "failed",
            ),
            (400, None, r#"{"reason": "BadCollapseId"}"#, "failed"),
            (403, None, r#"{"reason": "InvalidProviderToken"}"#, "failed"),
            (413, None, r#"{"reason": "PayloadTooLarge"}"#, "failed"),
            (429, None, r#"{"reason": "TooManyRequests"}"#, "retry"),
            (500, None, r#"{"reason": "InternalServerError"}"#, "retry"),
            (
                503,
                Some("3"),
                r#"{"reason": "ServiceUnavailable"}"#,
                "retry",
            ),
        ];
        for (status, retry_after, body, expected) in cases {
            let outcome = classify_apns(code(*status), *retry_after, body, now());
            assert_eq!(kind(&outcome), *expected, "{status} {body}");
        }
        assert_eq!(
            classify_apns(code(400), None, r#"{"reason": "BadCollapseId"}"#, now()),
            DeliveryOutcome::failed("400 Bad Request: BadCollapseId")
        );
        assert_eq!(
            classify_apns(
                code(503),
                Some("3"),
                r#"{"reason": "ServiceUnavailable"}"#,
                now()
            ),
            DeliveryOutcome::Retry {
                after: secs(3),
                reason: "503 Service Unavailable: ServiceUnavailable".to_owned()
            }
        );
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "é".repeat(500);
        let DeliveryOutcome::Failed { reason } = classify_webpush(code(400), None, &body, now())
        else {
            panic!("expected failed");
        };
        assert_eq!(reason.chars().count(), "400 Bad Request: ".len() + 200);
    }
}
