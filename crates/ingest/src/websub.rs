//! The WebSub subscriber's side in the ingest role (W3C WebSub §4–§6): discover a feed's hub,
//! subscribe with a callback on the api role, renew before the lease runs out, unsubscribe
//! when the feed drops its hub or the source is paused or deleted, and relax polling while the
//! hub delivers.

use chrono::{DateTime, Duration, Utc};
use herald_store::websub::{self, Departure, SubscribeRequest, Subscription, SubscriptionState};
use herald_store::{Db, Secret, StoreError};
use rand::RngCore;
use url::Url;
use uuid::Uuid;

use crate::config::WebSubConfig;
use crate::fetch::Fetcher;

/// A feed's hub and topic, as discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// The hub to subscribe at.
    pub hub: Url,
    /// The topic: the feed's self URL, else the URL it was fetched from.
    pub topic: Url,
}

/// Finds a feed's hub and topic (W3C WebSub §4): `Link` headers first, then the document's
/// `rel="hub"` and `rel="self"` links. The topic is the feed's self URL, else `feed_url`.
pub fn discover(
    link_headers: &[String],
    hubs: &[Url],
    self_url: Option<&Url>,
    feed_url: &Url,
) -> Option<Discovery> {
    let header_links: Vec<(String, Url)> = link_headers
        .iter()
        .flat_map(|value| parse_link_header(value, feed_url))
        .collect();
    let from_header = |rel: &str| {
        header_links
            .iter()
            .find(|(r, _)| {
                r.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case(rel))
            })
            .map(|(_, url)| url.clone())
    };
    let hub = from_header("hub").or_else(|| hubs.first().cloned())?;
    let topic = from_header("self")
        .or_else(|| self_url.cloned())
        .unwrap_or_else(|| feed_url.clone());
    Some(Discovery { hub, topic })
}

/// `<url>; rel="hub", <url2>; rel=self` → `[("hub", url), ("self", url2)]`, http(s) only.
fn parse_link_header(value: &str, base: &Url) -> Vec<(String, Url)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|c| open + c) else {
            break;
        };
        let target = &rest[open + 1..close];
        let params_end = rest[close..].find(",").map_or(rest.len(), |c| close + c);
        // A comma inside a quoted parameter is rare in hub links; the next `<` starts a link.
        let next_link = rest[close..].find('<').map_or(rest.len(), |c| close + c);
        let params = &rest[close + 1..params_end.min(next_link)];
        let rel = params.split(';').find_map(|p| {
            let (key, value) = p.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("rel")
                .then(|| value.trim().trim_matches('"').to_owned())
        });
        if let (Some(rel), Ok(url)) = (rel, base.join(target.trim()))
            && matches!(url.scheme(), "http" | "https")
        {
            out.push((rel, url));
        }
        rest = &rest[next_link.min(rest.len())..];
        if next_link >= value.len() {
            break;
        }
    }
    out
}

/// The callback URL of a subscription: `{public_url}/websub/{source}/{token}`.
pub fn callback_url(public_url: &Url, source_id: Uuid, token: &str) -> Option<Url> {
    let mut base = public_url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(&format!("websub/{source_id}/{token}")).ok()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far ahead of the lease's end a renewal is due: the configured margin, at most half
/// of the lease granted.
fn renew_margin(config: &WebSubConfig, subscription: &Subscription) -> Duration {
    let configured = Duration::seconds(i64::try_from(config.renew_before_seconds).unwrap_or(0));
    match (subscription.verified_at, subscription.lease_expires_at) {
        (Some(from), Some(until)) => configured.min((until - from) / 2),
        _ => configured,
    }
}

/// What the ingest role should do about a source's subscription after a poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    Keep,
    /// Ask the hub for a (new) subscription.
    Subscribe(Discovery),
    /// Renew the current subscription (same callback and secret).
    Renew,
    /// The feed no longer advertises this hub or topic: unsubscribe, then maybe subscribe anew.
    Replace {
        /// What to subscribe to instead, if anything.
        next: Option<Discovery>,
    },
}

/// Decides what to do given what the last poll discovered and the stored subscription.
pub fn decide(
    config: &WebSubConfig,
    discovered: Option<Discovery>,
    current: Option<&Subscription>,
    now: DateTime<Utc>,
) -> Action {
    if !config.enabled || config.public_url.is_none() {
        return Action::Keep;
    }
    let retry = Duration::seconds(i64::try_from(config.retry_seconds).unwrap_or(3600));
    match (discovered, current) {
        (None, None) => Action::Keep,
        (None, Some(sub)) => match sub.state {
            SubscriptionState::Active | SubscriptionState::Renewing => {
                Action::Replace { next: None }
            }
            _ => Action::Keep,
        },
        (Some(found), None) => Action::Subscribe(found),
        (Some(found), Some(sub)) => {
            let same = sub.hub_url == found.hub.as_str() && sub.topic_url == found.topic.as_str();
            let asked_long_ago = sub.requested_at + retry <= now;
            match sub.state {
                _ if !same && sub.delivers(now) => Action::Replace { next: Some(found) },
                _ if !same => Action::Subscribe(found),
                SubscriptionState::Active | SubscriptionState::Renewing if sub.delivers(now) => {
                    let due = sub
                        .lease_expires_at
                        .is_some_and(|until| until - renew_margin(config, sub) <= now);
                    // A renewal the hub never verified is asked again after `retry_seconds`.
                    let stuck = sub.state == SubscriptionState::Renewing && asked_long_ago;
                    if due && (sub.state == SubscriptionState::Active || stuck) {
                        Action::Renew
                    } else {
                        Action::Keep
                    }
                }
                // The lease ran out without a renewal: subscribe again.
                SubscriptionState::Active | SubscriptionState::Renewing => Action::Subscribe(found),
                SubscriptionState::Subscribing
                | SubscriptionState::Unsubscribing
                | SubscriptionState::Denied
                | SubscriptionState::Failed => {
                    if asked_long_ago {
                        Action::Subscribe(found)
                    } else {
                        Action::Keep
                    }
                }
            }
        }
    }
}

/// Carries out [`decide`]'s action for `source_id`. Hub errors are recorded on the
/// subscription (which then stops counting as delivering); only database errors return.
pub async fn act(
    db: &Db,
    fetcher: &Fetcher,
    config: &WebSubConfig,
    source_id: Uuid,
    action: Action,
    current: Option<&Subscription>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(public_url) = config.public_url.as_ref() else {
        return Ok(());
    };
    match action {
        Action::Keep => Ok(()),
        Action::Subscribe(found) => {
            subscribe(
                db, fetcher, config, public_url, source_id, &found, None, now,
            )
            .await
        }
        Action::Renew => {
            let Some(sub) = current else { return Ok(()) };
            let (Ok(hub), Ok(topic)) = (Url::parse(&sub.hub_url), Url::parse(&sub.topic_url))
            else {
                return websub::remove(db, source_id).await;
            };
            let found = Discovery { hub, topic };
            subscribe(
                db,
                fetcher,
                config,
                public_url,
                source_id,
                &found,
                Some(sub),
                now,
            )
            .await
        }
        Action::Replace { next } => {
            if let Some(sub) = current {
                unsubscribe(db, fetcher, public_url, sub, now).await?;
            }
            match next {
                Some(found) => {
                    subscribe(
                        db, fetcher, config, public_url, source_id, &found, None, now,
                    )
                    .await
                }
                None => Ok(()),
            }
        }
    }
}

/// Records and sends a subscription request (`renewing` keeps the callback and secret).
#[allow(clippy::too_many_arguments)]
async fn subscribe(
    db: &Db,
    fetcher: &Fetcher,
    config: &WebSubConfig,
    public_url: &Url,
    source_id: Uuid,
    found: &Discovery,
    renewing: Option<&Subscription>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (token, secret) = match renewing {
        Some(sub) => (sub.callback_token.clone(), sub.secret.expose().clone()),
        None => (random_hex(16), random_hex(32)),
    };
    let Some(callback) = callback_url(public_url, source_id, &token) else {
        return Ok(());
    };
    let request = SubscribeRequest {
        source_id,
        hub_url: found.hub.to_string(),
        topic_url: found.topic.to_string(),
        callback_token: token,
        secret: Secret::new(secret),
    };
    websub::request_subscribe(db, &request, now).await?;
    let lease = config.lease_seconds.to_string();
    let form = [
        ("hub.mode", "subscribe"),
        ("hub.topic", found.topic.as_str()),
        ("hub.callback", callback.as_str()),
        ("hub.secret", request.secret.expose().as_str()),
        ("hub.lease_seconds", lease.as_str()),
    ];
    let outcome = fetcher.post_form(&found.hub, &form).await;
    settle(db, source_id, &found.hub, "subscribe", outcome, now).await
}

/// Records and sends an unsubscription request for `sub`.
async fn unsubscribe(
    db: &Db,
    fetcher: &Fetcher,
    public_url: &Url,
    sub: &Subscription,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (Ok(hub), Some(callback)) = (
        Url::parse(&sub.hub_url),
        callback_url(public_url, sub.source_id, &sub.callback_token),
    ) else {
        return websub::remove(db, sub.source_id).await;
    };
    websub::request_unsubscribe(db, sub.source_id, now).await?;
    let form = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", sub.topic_url.as_str()),
        ("hub.callback", callback.as_str()),
    ];
    let outcome = fetcher.post_form(&hub, &form).await;
    settle(db, sub.source_id, &hub, "unsubscribe", outcome, now).await
}

/// Sends a deleted source's owed unsubscription (claimed first, so one process sends it);
/// a refusal or an unreachable hub is recorded and asked again after `retry_seconds`, until
/// the hub verifies it or its lease ends. Only database errors return.
pub async fn depart(
    db: &Db,
    fetcher: &Fetcher,
    config: &WebSubConfig,
    departure: &Departure,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let source_id = departure.source_id;
    let (Some(public_url), Ok(hub)) = (config.public_url.as_ref(), Url::parse(&departure.hub_url))
    else {
        return Ok(());
    };
    let Some(callback) = callback_url(public_url, source_id, &departure.callback_token) else {
        return Ok(());
    };
    let retry = Duration::seconds(i64::try_from(config.retry_seconds).unwrap_or(3600));
    if !websub::claim_departure(db, source_id, now, now + retry).await? {
        return Ok(());
    }
    let form = [
        ("hub.mode", "unsubscribe"),
        ("hub.topic", departure.topic_url.as_str()),
        ("hub.callback", callback.as_str()),
    ];
    let error = match fetcher.post_form(&hub, &form).await {
        Ok(status) if (200..300).contains(&status) => {
            tracing::info!(%source_id, %hub, status, "a deleted source's hub accepted the unsubscription");
            return Ok(());
        }
        Ok(status) => format!("the hub answered unsubscribe with HTTP status {status}"),
        Err(err) => format!("cannot reach the hub to unsubscribe: {err}"),
    };
    tracing::warn!(%source_id, %hub, %error, "a deleted source's unsubscription failed");
    websub::departure_failed(db, source_id, &error).await
}

/// A hub accepts a request with 202 (any 2xx is taken); anything else fails the request.
async fn settle(
    db: &Db,
    source_id: Uuid,
    hub: &Url,
    mode: &str,
    outcome: Result<u16, crate::fetch::FetchError>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let error = match outcome {
        Ok(status) if (200..300).contains(&status) => {
            tracing::info!(%source_id, %hub, mode, status, "websub request accepted by the hub");
            return Ok(());
        }
        Ok(status) => format!("the hub answered {mode} with HTTP status {status}"),
        Err(err) => format!("cannot reach the hub to {mode}: {err}"),
    };
    tracing::warn!(%source_id, %hub, %error, "websub request failed");
    websub::request_failed(db, source_id, &error, now).await
}

/// The next poll of a feed whose hub delivers: no sooner than `poll_interval_seconds` (the
/// safety net), yet before the renewal is due, and never sooner than `normal` would be.
pub fn relaxed_next_poll(
    config: &WebSubConfig,
    sub: &Subscription,
    normal: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let relaxed = now + Duration::seconds(i64::try_from(config.poll_interval_seconds).unwrap_or(0));
    let renew_at = sub
        .lease_expires_at
        .map_or(relaxed, |until| until - renew_margin(config, sub));
    normal.max(relaxed.min(renew_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("url")
    }

    #[test]
    fn link_headers_come_first() {
        let feed = url("https://pub.example/feed.xml");
        let found = discover(
            &[r#"<https://hub.example/>; rel="hub", </feed.xml?self>; rel="self""#.into()],
            &[url("https://other-hub.example/")],
            Some(&url("https://pub.example/doc-self")),
            &feed,
        )
        .expect("found");
        assert_eq!(found.hub.as_str(), "https://hub.example/");
        assert_eq!(found.topic.as_str(), "https://pub.example/feed.xml?self");

        let found =
            discover(&[], &[url("https://other-hub.example/")], None, &feed).expect("found");
        assert_eq!(found.hub.as_str(), "https://other-hub.example/");
        assert_eq!(found.topic, feed);
        assert_eq!(
            discover(
                &["<https://x.example/>; rel=alternate".into()],
                &[],
                None,
                &feed
            ),
            None
        );
    }

    #[test]
    fn callback_urls_keep_the_base_path() {
        let id = Uuid::nil();
        assert_eq!(
            callback_url(&url("https://news.example/herald"), id, "t0k")
                .map(String::from)
                .as_deref(),
            Some("https://news.example/herald/websub/00000000-0000-0000-0000-000000000000/t0k")
        );
        assert_eq!(
            callback_url(&url("https://news.example"), id, "t")
                .map(String::from)
                .as_deref(),
            Some("https://news.example/websub/00000000-0000-0000-0000-000000000000/t")
        );
    }

    fn sub(state: SubscriptionState, verified: DateTime<Utc>, lease_hours: i64) -> Subscription {
        Subscription {
            source_id: Uuid::nil(),
            hub_url: "https://hub.example/".into(),
            topic_url: "https://pub.example/feed.xml".into(),
            callback_token: "t".into(),
            secret: Secret::new("s".into()),
            state,
            requested_at: verified,
            verified_at: Some(verified),
            lease_expires_at: Some(verified + Duration::hours(lease_hours)),
            last_delivery_at: None,
            deliveries: 0,
            rejected_deliveries: 0,
            last_error: None,
        }
    }

    #[test]
    fn decisions_follow_the_lease() {
        let now = Utc::now();
        let config = WebSubConfig {
            public_url: Some(url("https://news.example/")),
            renew_before_seconds: 3600,
            ..WebSubConfig::default()
        };
        let found = Discovery {
            hub: url("https://hub.example/"),
            topic: url("https://pub.example/feed.xml"),
        };
        let off = WebSubConfig::default();
        assert_eq!(decide(&off, Some(found.clone()), None, now), Action::Keep);
        assert_eq!(
            decide(&config, Some(found.clone()), None, now),
            Action::Subscribe(found.clone())
        );
        let fresh = sub(SubscriptionState::Active, now, 240);
        assert_eq!(
            decide(&config, Some(found.clone()), Some(&fresh), now),
            Action::Keep
        );
        let ending = sub(
            SubscriptionState::Active,
            now - Duration::hours(239) - Duration::minutes(30),
            240,
        );
        assert_eq!(
            decide(&config, Some(found.clone()), Some(&ending), now),
            Action::Renew
        );
        let lapsed = sub(SubscriptionState::Active, now - Duration::hours(300), 240);
        assert_eq!(
            decide(&config, Some(found.clone()), Some(&lapsed), now),
            Action::Subscribe(found.clone())
        );
        assert_eq!(
            decide(&config, None, Some(&fresh), now),
            Action::Replace { next: None }
        );
        let moved = Discovery {
            hub: url("https://new-hub.example/"),
            topic: found.topic.clone(),
        };
        assert_eq!(
            decide(&config, Some(moved.clone()), Some(&fresh), now),
            Action::Replace { next: Some(moved) }
        );
        let failed = sub(SubscriptionState::Failed, now - Duration::minutes(5), 0);
        assert_eq!(
            decide(&config, Some(found.clone()), Some(&failed), now),
            Action::Keep
        );
        let failed_long_ago = sub(SubscriptionState::Failed, now - Duration::hours(2), 0);
        assert_eq!(
            decide(&config, Some(found.clone()), Some(&failed_long_ago), now),
            Action::Subscribe(found)
        );
    }

    #[test]
    fn polling_relaxes_until_the_renewal() {
        let now = Utc::now();
        let config = WebSubConfig {
            poll_interval_seconds: 3600,
            renew_before_seconds: 600,
            ..WebSubConfig::default()
        };
        let normal = now + Duration::minutes(5);
        let long = sub(SubscriptionState::Active, now, 240);
        assert_eq!(
            relaxed_next_poll(&config, &long, normal, now),
            now + Duration::hours(1)
        );
        let short = sub(SubscriptionState::Active, now, 0);
        let short = Subscription {
            lease_expires_at: Some(now + Duration::minutes(30)),
            ..short
        };
        // Renewal due at 30 − min(10, 15) = 20 minutes.
        assert_eq!(
            relaxed_next_poll(&config, &short, normal, now),
            now + Duration::minutes(20)
        );
        assert_eq!(
            relaxed_next_poll(&config, &short, now + Duration::hours(2), now),
            now + Duration::hours(2)
        );
    }
}
