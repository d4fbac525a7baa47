//! Fetching one feed over HTTP: conditional requests, redirects, size and time limits.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED, LOCATION, RETRY_AFTER,
};
use url::Url;

use crate::config::IngestConfig;
use crate::guard::{self, AddressPolicy, Refusal};

/// The validators of a fetched feed, sent back on the next request to allow a `304`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` response header, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` response header, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// What the server said about how long its answer stays fresh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `Cache-Control: s-maxage` or else `max-age` (`no-store` and `no-cache` are ignored).
    pub max_age: Option<Duration>,
    /// The `Expires` header.
    pub expires: Option<DateTime<Utc>>,
    /// The `Retry-After` header, as a delay from the response.
    pub retry_after: Option<Duration>,
}

impl CacheHints {
    /// Reads the hints from response headers; `now` turns an HTTP-date `Retry-After` into a delay.
    pub fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Self {
        let max_age = parse_cache_control(
            headers
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|value| value.to_str().ok()),
        );
        let expires = headers
            .get(EXPIRES)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_http_date);
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now));
        Self {
            max_age,
            expires,
            retry_after,
        }
    }
}

/// Parses `Cache-Control` values: `s-maxage` wins over `max-age`, other directives are ignored.
pub fn parse_cache_control<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Duration> {
    let mut max_age = None;
    let mut s_maxage = None;
    for directive in values.into_iter().flat_map(|value| value.split(',')) {
        let Some((name, value)) = directive.trim().split_once('=') else {
            continue;
        };
        let Ok(seconds) = value.trim().trim_matches('"').parse::<u64>() else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("s-maxage") {
            s_maxage = Some(Duration::from_secs(seconds));
        } else if name.eq_ignore_ascii_case("max-age") {
            max_age = Some(Duration::from_secs(seconds));
        }
    }
    s_maxage.or(max_age)
}

/// Parses `Retry-After` as delay-seconds or an HTTP date (a date in the past gives zero).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Parses an HTTP date (IMF-fixdate, RFC 850 or asctime form).
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    let at: SystemTime = httpdate::parse_http_date(value.trim()).ok()?;
    Some(DateTime::<Utc>::from(at))
}

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The feed (or a redirect hop) is on a non-public address.
    #[error("refused non-public address {0}")]
    Blocked(IpAddr),
    /// The URL (or a redirect hop) is not http or https.
    #[error("unsupported URL scheme `{0}`")]
    UnsupportedScheme(String),
    /// The connection or the whole request took too long.
    #[error("timed out")]
    Timeout,
    /// The connection could not be made (DNS, TCP or TLS).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The redirect chain was longer than allowed.
    #[error("too many redirects")]
    TooManyRedirects,
    /// The body was larger than allowed.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The server answered with an error status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// The body could not be read or decompressed.
    #[error("could not read the body: {0}")]
    Decode(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl From<Refusal> for FetchError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Blocked(ip) => Self::Blocked(ip),
            Refusal::UnsupportedScheme(scheme) => Self::UnsupportedScheme(scheme),
            Refusal::TooManyRedirects { .. } => Self::TooManyRedirects,
        }
    }
}

impl FetchError {
    fn from_reqwest(error: &reqwest::Error) -> Self {
        let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
        while let Some(err) = cause {
            if let Some(refusal) = err.downcast_ref::<Refusal>() {
                return refusal.clone().into();
            }
            cause = err.source();
        }
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_connect() {
            Self::Connect(error_chain(error))
        } else if error.is_decode() || error.is_body() {
            Self::Decode(error_chain(error))
        } else {
            Self::Other(error_chain(error))
        }
    }
}

/// The error and its causes on one line, for logs and the feed's last-error field.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

/// The result of one fetch.
// Made and moved once per fetch; boxing the common variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    /// A 2xx answer with its (decompressed) body.
    Fetched {
        /// The body, at most `max_body_bytes` long.
        body: Bytes,
        /// The `Content-Type` header.
        content_type: Option<String>,
        /// Validators to send back next time.
        validators: Validators,
        /// The URL after redirects.
        final_url: Url,
        /// Freshness hints for scheduling.
        caching: CacheHints,
        /// The `Link` headers (RFC 8288), where WebSub hubs may be advertised.
        links: Vec<String>,
    },
    /// A 304: the feed has not changed since the validators were issued.
    NotModified {
        /// Freshness hints for scheduling.
        caching: CacheHints,
    },
    /// A 429 or 503: the server asks us to slow down.
    Throttled {
        /// The `Retry-After` delay, if any.
        retry_after: Option<Duration>,
        /// The status code (429 or 503).
        status: u16,
    },
    /// Anything else.
    Failed {
        /// What went wrong.
        error: FetchError,
        /// The `Retry-After` delay, if the server sent one.
        retry_after: Option<Duration>,
    },
}

impl FetchOutcome {
    fn failed(error: FetchError) -> Self {
        Self::Failed {
            error,
            retry_after: None,
        }
    }
}

/// Why a redirect reached us unfollowed: the client drops hops it cannot request (say `file:`).
fn unfollowed_redirect(response: &reqwest::Response, policy: &AddressPolicy) -> Option<FetchError> {
    if !response.status().is_redirection() {
        return None;
    }
    let location = response.headers().get(LOCATION)?.to_str().ok()?;
    let next = response.url().join(location).ok()?;
    guard::check_url(&next, policy).err().map(FetchError::from)
}

/// Could not build the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("could not build the feed HTTP client: {0}")]
pub struct ClientBuildError(#[from] reqwest::Error);

/// Fetches feeds with one shared HTTP client that only talks to public addresses.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: AddressPolicy,
    max_body_bytes: u64,
}

impl Fetcher {
    /// Builds the client: rustls, gzip and brotli, timeouts, guarded DNS and redirects, the UA.
    pub fn new(config: &IngestConfig) -> Result<Self, ClientBuildError> {
        let policy = config.address_policy();
        let client =
            herald_netguard::guard(reqwest::Client::builder(), &policy, config.max_redirects)
                .user_agent(config.user_agent.as_str())
                .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
                .timeout(Duration::from_secs(config.timeout_seconds))
                .gzip(true)
                .brotli(true)
                .tls_backend_rustls()
                .build()?;
        Ok(Self {
            client,
            policy,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Fetches `url`, sending `validators` as a conditional request.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> FetchOutcome {
        if let Err(refusal) = guard::check_url(url, &self.policy) {
            return FetchOutcome::failed(refusal.into());
        }
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag.as_str());
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified.as_str());
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return FetchOutcome::failed(FetchError::from_reqwest(&error)),
        };

        let caching = CacheHints::from_headers(response.headers(), Utc::now());
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return FetchOutcome::NotModified { caching };
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return FetchOutcome::Throttled {
                retry_after: caching.retry_after,
                status: status.as_u16(),
            };
        }
        if !status.is_success() {
            let error = unfollowed_redirect(&response, &self.policy)
                .unwrap_or(FetchError::Status(status.as_u16()));
            return FetchOutcome::Failed {
                error,
                retry_after: caching.retry_after,
            };
        }

        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(CONTENT_TYPE);
        let new_validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let final_url = response.url().clone();
        let links: Vec<String> = response
            .headers()
            .get_all(reqwest::header::LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .take(16)
            .map(str::to_owned)
            .collect();

        let limit = self.max_body_bytes;
        // Known only when the body is not compressed; a compressed body is checked as it inflates.
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return FetchOutcome::failed(FetchError::BodyTooLarge { limit });
        }
        let capacity = response.content_length().unwrap_or(64 * 1024).min(limit);
        let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return FetchOutcome::failed(FetchError::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) => return FetchOutcome::failed(FetchError::from_reqwest(&error)),
            }
        }

        FetchOutcome::Fetched {
            body: body.freeze(),
            content_type,
            validators: new_validators,
            final_url,
            caching,
            links,
        }
    }

    /// POSTs a form to `url` (a WebSub hub) with the same guarded client; the status, or why
    /// no answer came.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<u16, FetchError> {
        guard::check_url(url, &self.policy).map_err(FetchError::from)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| FetchError::from_reqwest(&e))?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 120 ", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sat, 01 Mar 2025 12:05:00 GMT", now()),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_retry_after("Saturday, 01-Mar-25 12:00:30 GMT", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
    }

    #[test]
    fn cache_control_directives() {
        assert_eq!(
            parse_cache_control(["public, max-age=600"]),
            Some(Duration::from_secs(600))
        );
        assert_eq!(
            parse_cache_control(["max-age=600, s-maxage=1200"]),
            Some(Duration::from_secs(1200))
        );
        assert_eq!(
            parse_cache_control(["no-store", "Max-Age=\"30\""]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_cache_control(["no-cache, no-store"]), None);
        assert_eq!(parse_cache_control(["max-age=abc"]), None);
    }

    #[test]
    fn hints_from_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            "max-age=60, no-store".parse().expect("header"),
        );
        headers.insert(
            EXPIRES,
            "Sat, 01 Mar 2025 13:00:00 GMT".parse().expect("header"),
        );
        headers.insert(RETRY_AFTER, "90".parse().expect("header"));
        let hints = CacheHints::from_headers(&headers, now());
        assert_eq!(hints.max_age, Some(Duration::from_secs(60)));
        assert_eq!(hints.expires, Some(now() + chrono::Duration::hours(1)));
        assert_eq!(hints.retry_after, Some(Duration::from_secs(90)));

        let mut bad = HeaderMap::new();
        bad.insert(EXPIRES, "0".parse().expect("header"));
        assert_eq!(CacheHints::from_headers(&bad, now()), CacheHints::default());
    }
}
