#![allow(clippy::unwrap_used, clippy::expect_used)]
//! WebSub push ingest end to end (issue #22 §1): the real app subscribes at a local hub that
//! follows the W3C Recommendation, answers its verification of intent, ingests signed
//! deliveries through the same path as a poll (to a breaking alert on a phone), refuses bad
//! signatures, renews its lease, falls back to polling and unsubscribes (a feed that drops its
//! hub, a paused source, a deleted one).

use herald::config::Config;
use herald_notifier::fakes::{FakeSubscription, FakeWebPush};
use herald_store::sources::{self, NewSource, Source};
use herald_store::websub::{self as store_websub, SubscriptionState};
use herald_store::{Db, articles, source_health};
use herald_tests::TestApp;
use herald_tests::websub_hub::{FakeHub, HubEvent, Signing};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::future::Future;
use std::time::{Duration, Instant};

const FEED: &str = "wire.xml";

struct Setup {
    hub: FakeHub,
    app: TestApp,
    db: Db,
    source: Source,
}

fn entry(id: &str, title: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339();
    format!(
        "<entry><id>urn:wire:{id}</id><title>{title}</title>\
         <link rel=\"alternate\" href=\"https://wire.example/{id}\"/>\
         <updated>{now}</updated><summary>{title}. More soon.</summary></entry>"
    )
}

fn atom(hub: &FakeHub, with_hub: bool, entries: &[String]) -> String {
    let hub_link = if with_hub {
        format!("<link rel=\"hub\" href=\"{}\"/>", hub.hub_url())
    } else {
        String::new()
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Wire</title><id>urn:wire</id>\
         <updated>{}</updated>{hub_link}<link rel=\"self\" href=\"{}\"/>\
         <link rel=\"alternate\" href=\"https://wire.example/\"/>{}</feed>",
        chrono::Utc::now().to_rfc3339(),
        hub.feed_url(FEED),
        entries.concat()
    )
}

async fn setup(adjust: impl FnOnce(&mut Config)) -> Setup {
    let hub = FakeHub::start().await;
    hub.set_feed(
        FEED,
        &atom(
            &hub,
            true,
            &[entry("old", "Yesterday's council meeting recap")],
        ),
    );
    let public = hub.public_url();
    let app = TestApp::spawn_with(|config| {
        config.http.public_url = Some(public.parse().unwrap());
        config.ingest.websub.public_url = Some(public.parse().unwrap());
        config.ingest.min_interval_seconds = 1;
        config.ingest.default_interval_seconds = 1;
        config.ingest.max_interval_seconds = 30;
        config.ingest.websub.poll_interval_seconds = 3600;
        config.push.webpush.timeout_seconds = 2;
        adjust(config);
    })
    .await;
    hub.forward_to(app.addr);
    let db = app.db.connect().await;
    let source = sources::create(
        &db,
        NewSource {
            name: "Wire".into(),
            feed_url: hub.feed_url(FEED),
            site_url: None,
            topics: vec!["world".into()],
            language: Some("en".into()),
            breaking: true,
            poll_interval_seconds: Some(1),
        },
    )
    .await
    .unwrap();
    Setup {
        hub,
        app,
        db,
        source,
    }
}

async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(seconds),
            "timed out after {seconds} s waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Setup {
    fn topic(&self) -> String {
        self.hub.feed_url(FEED)
    }

    /// Waits until the hub holds a verified subscription and the store says active.
    async fn until_subscribed(&self) {
        let topic = self.topic();
        eventually(15, "the hub verified the subscription", || async {
            !self.hub.subscribers(&topic).is_empty()
        })
        .await;
        eventually(5, "the store recorded the subscription active", || async {
            store_websub::get(&self.db, self.source.id)
                .await
                .unwrap()
                .is_some_and(|s| s.delivers(chrono::Utc::now()))
        })
        .await;
    }

    async fn titles(&self) -> Vec<String> {
        articles::published_since(&self.db, chrono::Utc::now() - chrono::Duration::days(2))
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.source_id == self.source.id)
            .map(|a| a.title)
            .collect()
    }

    /// The app's own URL for a callback the hub holds (which goes through the proxy).
    fn direct(&self, callback: &str) -> String {
        callback.replace(&self.hub.public_url(), &self.app.url("/"))
    }
}

async fn reader_device(app: &TestApp, push: &FakeWebPush) -> FakeSubscription {
    let body: Value = app
        .post_json("/v1/auth/anonymous", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();
    let followed = app
        .client
        .post(app.url("/v1/me/subscriptions"))
        .bearer_auth(&token)
        .json(&json!({"topic": "world"}))
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), StatusCode::OK);
    let sub = push.new_subscription().unwrap();
    let registered = app
        .client
        .post(app.url("/v1/devices"))
        .bearer_auth(&token)
        .json(&json!({"platform": "web", "subscription": sub.browser_json(), "timezone": "UTC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    sub
}

#[tokio::test]
async fn a_pushed_breaking_item_reaches_a_phone_within_seconds() {
    let s = setup(|_| {}).await;
    let push = FakeWebPush::start().await.unwrap();
    let phone = reader_device(&s.app, &push).await;
    s.until_subscribed().await;
    // The feed's first poll is done and, with the hub delivering, the next one is an hour off:
    // only the push can bring the new item in time.
    eventually(10, "polling relaxed to the safety-net interval", || async {
        let source = sources::get(&s.db, s.source.id).await.unwrap();
        source.next_fetch_at > chrono::Utc::now() + chrono::Duration::minutes(30)
    })
    .await;
    assert!(
        s.titles()
            .await
            .contains(&"Yesterday's council meeting recap".to_string())
    );

    let title = "Earthquake of magnitude 7 strikes off the coast";
    let with_image = entry("quake", title).replace(
        "</entry>",
        "<link rel=\"enclosure\" type=\"image/jpeg\" href=\"https://img.wire.example/quake.jpg\"/></entry>",
    );
    let body = atom(&s.hub, true, &[with_image]);
    let started = Instant::now();
    let statuses = s.hub.publish(FEED, &body, Signing::Sha256).await;
    assert_eq!(statuses, vec![202]);
    let delivered = || {
        push.received_for(&phone.id)
            .into_iter()
            .filter(|r| r.status.is_some_and(|c| (200..300).contains(&c)))
            .map(|r| r.payload::<Value>().unwrap())
            .collect::<Vec<_>>()
    };
    while delivered().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no push within 10 s of the hub's delivery"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let latency = started.elapsed();
    println!(
        "websub hub post -> first push delivery: {} ms",
        latency.as_millis()
    );
    let payload = &delivered()[0];
    assert_eq!(payload["title"], title, "{payload}");
    assert_eq!(
        payload["image_url"], "https://img.wire.example/quake.jpg",
        "{payload}"
    );
    assert!(
        payload["url"]
            .as_str()
            .unwrap()
            .contains("wire.example/quake"),
        "{payload}"
    );
    let health = source_health::get(&s.db, s.source.id).await.unwrap();
    assert_eq!(health.counts.pushed, 1);
    assert!(health.counts.ingested >= 2, "{health:?}");
    let sub = store_websub::get(&s.db, s.source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.deliveries, 1);
    assert_eq!(sub.rejected_deliveries, 0);
    // The pushed body was ingested once and left the queue.
    assert_eq!(store_websub::waiting(&s.db, s.source.id).await.unwrap(), 0);
    // The measured figure in docs/BENCHMARKS.md comes from this line; the bound here only
    // catches a push path that fell back to polling.
    assert!(latency < Duration::from_secs(5), "{latency:?}");
}

#[tokio::test]
async fn bad_signatures_and_strangers_are_refused_and_change_nothing() {
    let s = setup(|config| config.http.websub_max_body_bytes = 8 * 1024).await;
    s.until_subscribed().await;
    let topic = s.topic();
    let sub = s.hub.subscribers(&topic).remove(0);

    for (n, signing) in [Signing::WrongSecret, Signing::Unsigned, Signing::Sha1]
        .into_iter()
        .enumerate()
    {
        let body = atom(
            &s.hub,
            true,
            &[entry(&format!("forged{n}"), &format!("Forged story {n}"))],
        );
        // W3C WebSub §8: the hub gets a 2xx, the body is ignored.
        assert_eq!(s.hub.deliver(&sub, &body, signing).await, 202);
    }
    let stored = store_websub::get(&s.db, s.source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.rejected_deliveries, 3);
    assert_eq!(stored.deliveries, 0);
    assert_eq!(store_websub::waiting(&s.db, s.source.id).await.unwrap(), 0);

    // A stranger who knows the source but not the token.
    let direct = s.direct(&sub.callback);
    let stranger = direct.rsplit_once('/').unwrap().0.to_string() + "/not-the-token";
    let response = s
        .app
        .client
        .post(&stranger)
        .header("x-hub-signature", "sha256=00")
        .body("<feed/>")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // Too large: 413 before any signature work.
    let huge = "x".repeat(9 * 1024);
    let response = s.app.client.post(&direct).body(huge).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Verification of intent: only for a pending request of ours, with the right topic.
    let verify = |query: String| {
        let url = format!("{direct}?{query}");
        let client = s.app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let topic_q = topic.replace(':', "%3A").replace('/', "%2F");
    let replay = verify(format!(
        "hub.mode=subscribe&hub.topic={topic_q}&hub.challenge=c1&hub.lease_seconds=60"
    ))
    .await;
    assert_eq!(
        replay.status(),
        StatusCode::NOT_FOUND,
        "not pending any more"
    );
    let other_topic = verify(
        "hub.mode=subscribe&hub.topic=https%3A%2F%2Fevil.example%2F&hub.challenge=c2&hub.lease_seconds=60"
            .into(),
    )
    .await;
    assert_eq!(other_topic.status(), StatusCode::NOT_FOUND);
    let unsubscribe = verify(format!(
        "hub.mode=unsubscribe&hub.topic={topic_q}&hub.challenge=c3"
    ))
    .await;
    assert_eq!(
        unsubscribe.status(),
        StatusCode::NOT_FOUND,
        "we never asked"
    );
    let bogus = verify(format!("hub.mode=bogus&hub.topic={topic_q}")).await;
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bogus.headers()["content-type"], "application/problem+json");
    let no_challenge = verify(format!(
        "hub.mode=subscribe&hub.topic={topic_q}&hub.lease_seconds=5"
    ))
    .await;
    assert_eq!(no_challenge.status(), StatusCode::BAD_REQUEST);
    // None of it changed the subscription.
    let after = store_websub::get(&s.db, s.source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, SubscriptionState::Active);
    assert_eq!(after.lease_expires_at, stored.lease_expires_at);

    // Signed but empty: nothing to ingest.
    assert_eq!(s.hub.deliver(&sub, "  ", Signing::Sha256).await, 422);
    // And a properly signed body does go in.
    let body = atom(
        &s.hub,
        true,
        &[entry("real", "Genuine story from the wire")],
    );
    assert_eq!(s.hub.deliver(&sub, &body, Signing::Sha256).await, 202);
    eventually(10, "the signed body was ingested", || async {
        s.titles()
            .await
            .contains(&"Genuine story from the wire".to_string())
    })
    .await;
    let titles = s.titles().await;
    assert!(
        !titles.iter().any(|t| t.starts_with("Forged")),
        "{titles:?}"
    );
}

#[tokio::test]
async fn leases_are_renewed_and_polling_takes_over_when_the_hub_stops_answering() {
    let s = setup(|config| config.ingest.websub.renew_before_seconds = 3600).await;
    s.hub.set_max_lease(4);
    s.until_subscribed().await;
    let topic = s.topic();
    let callback = s.hub.subscribers(&topic)[0].callback.clone();
    // Renewed before the 4 s lease runs out, at the same callback.
    let confirmed_subscribes = |events: Vec<HubEvent>| {
        events
            .into_iter()
            .filter(|e| matches!(e, HubEvent::Verified { mode, confirmed: true, callback: c, .. } if mode == "subscribe" && *c == callback))
            .count()
    };
    eventually(15, "the lease was renewed", || async {
        confirmed_subscribes(s.hub.events()) >= 2
    })
    .await;
    assert!(!s.hub.subscribers(&topic).is_empty());

    // The hub stops answering: the renewal fails and the feed is polled as usual again.
    s.hub.refuse_requests(true);
    eventually(15, "the failed renewal was recorded", || async {
        store_websub::get(&s.db, s.source.id)
            .await
            .unwrap()
            .is_some_and(|sub| sub.state == SubscriptionState::Failed)
    })
    .await;
    let describe = store_websub::describe(
        true,
        store_websub::get(&s.db, s.source.id)
            .await
            .unwrap()
            .as_ref(),
        chrono::Utc::now(),
    );
    assert_eq!(describe.state, "failed");
    assert!(describe.detail.contains("503"), "{describe:?}");
    s.hub.set_feed(
        FEED,
        &atom(
            &s.hub,
            true,
            &[entry("polled", "Only a poll can find this one")],
        ),
    );
    eventually(15, "a poll found the new item", || async {
        s.titles()
            .await
            .contains(&"Only a poll can find this one".to_string())
    })
    .await;
    eventually(10, "the hub's lease ran out", || async {
        s.hub.subscribers(&topic).is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_feed_that_drops_its_hub_is_unsubscribed() {
    let s = setup(|config| config.ingest.websub.poll_interval_seconds = 1).await;
    s.until_subscribed().await;
    let topic = s.topic();
    s.hub.set_feed(
        FEED,
        &atom(
            &s.hub,
            false,
            &[entry("old", "Yesterday's council meeting recap")],
        ),
    );
    eventually(15, "the hub verified the unsubscription", || async {
        s.hub.events().iter().any(|e| {
            matches!(e, HubEvent::Verified { mode, confirmed: true, .. } if mode == "unsubscribe")
        })
    })
    .await;
    assert!(s.hub.subscribers(&topic).is_empty());
    eventually(5, "the subscription is gone", || async {
        store_websub::get(&s.db, s.source.id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
}

#[tokio::test]
async fn a_denied_subscription_is_recorded() {
    let s = setup(|_| {}).await;
    s.until_subscribed().await;
    let topic = s.topic();
    let callback = s.hub.subscribers(&topic)[0].callback.clone();
    assert_eq!(
        s.hub.deny(&topic, &callback, "publisher opted out").await,
        200
    );
    let sub = store_websub::get(&s.db, s.source.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.state, SubscriptionState::Denied);
    assert!(sub.last_error.unwrap().contains("publisher opted out"));
    assert!(sub.lease_expires_at.is_none());
}

#[tokio::test]
async fn without_a_public_url_websub_stays_off_and_says_so() {
    let s = setup(|config| {
        config.http.public_url = None;
        config.ingest.websub.public_url = None;
    })
    .await;
    eventually(10, "the feed was polled", || async {
        s.titles()
            .await
            .contains(&"Yesterday's council meeting recap".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.hub.events().is_empty(), "{:?}", s.hub.events());
    assert!(
        store_websub::get(&s.db, s.source.id)
            .await
            .unwrap()
            .is_none()
    );
    let health = store_websub::describe(false, None, chrono::Utc::now());
    assert_eq!(health.state, "off");
    assert!(health.detail.contains("http.public_url"));
}

#[tokio::test]
async fn a_paused_source_is_unsubscribed_and_resubscribed_on_resume() {
    let s = setup(|_| {}).await;
    s.until_subscribed().await;
    let topic = s.topic();
    herald_store::newsroom::set_paused(&s.db, s.source.id, true)
        .await
        .unwrap();
    eventually(20, "the paused source was unsubscribed", || async {
        s.hub.subscribers(&topic).is_empty()
            && store_websub::get(&s.db, s.source.id)
                .await
                .unwrap()
                .is_none()
    })
    .await;
    herald_store::newsroom::set_paused(&s.db, s.source.id, false)
        .await
        .unwrap();
    s.until_subscribed().await;
}

#[tokio::test]
async fn a_deleted_source_is_unsubscribed_at_its_hub_even_when_the_hub_is_down_then() {
    let s = setup(|config| config.ingest.websub.retry_seconds = 1).await;
    s.until_subscribed().await;
    let topic = s.topic();
    let callback = s.hub.subscribers(&topic)[0].callback.clone();
    // The hub answers 503 when the newsroom deletes the source: the deletion goes through, and
    // the unsubscription the hub is owed outlives the source.
    s.hub.refuse_requests(true);
    let editor = herald_tests::newsroom::editor(&s.app).await;
    let path = format!("/v1/admin/sources/{}", s.source.id);
    let deleted = s
        .app
        .client
        .delete(s.app.url(&path))
        .bearer_auth(&editor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(sources::get(&s.db, s.source.id).await.is_err());
    assert!(
        store_websub::get(&s.db, s.source.id)
            .await
            .unwrap()
            .is_none()
    );
    eventually(20, "the refused unsubscription was recorded", || async {
        store_websub::departure(&s.db, s.source.id)
            .await
            .unwrap()
            .is_some_and(|d| d.attempts >= 1 && d.last_error.is_some_and(|e| e.contains("503")))
    })
    .await;
    assert_eq!(s.hub.subscribers(&topic).len(), 1);
    s.hub.refuse_requests(false);
    eventually(20, "the hub verified the unsubscription", || async {
        s.hub.subscribers(&topic).is_empty()
    })
    .await;
    let events = s.hub.events();
    assert!(
        events.iter().any(|e| matches!(e,
            HubEvent::Requested { mode, status: 202, callback: c, .. }
                if mode == "unsubscribe" && *c == callback)),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(e,
            HubEvent::Verified { mode, confirmed: true, callback: c, .. }
                if mode == "unsubscribe" && *c == callback)),
        "{events:?}"
    );
    eventually(5, "nothing more is owed to the hub", || async {
        store_websub::departure(&s.db, s.source.id)
            .await
            .unwrap()
            .is_none()
    })
    .await;
    // The deleted source's callback no longer confirms anything.
    let topic_q = topic.replace(':', "%3A").replace('/', "%2F");
    let url = format!(
        "{}?hub.mode=unsubscribe&hub.topic={topic_q}&hub.challenge=again",
        s.direct(&callback)
    );
    let again = s.app.client.get(url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let deleted_again = s
        .app
        .client
        .delete(s.app.url(&path))
        .bearer_auth(&editor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted_again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_a_hub_whose_lease_still_runs_is_owed_an_unsubscription_until_it_ends() {
    use chrono::{Duration as Span, Utc};
    use herald_store::websub::{SubscribeRequest, VerifyMode};
    let test_db = herald_store::testing::TestDb::new().await;
    let db = test_db.connect().await;
    let now = Utc::now();
    let mut ids = Vec::new();
    for (n, lease_seconds) in [Some(600), None].into_iter().enumerate() {
        let source = sources::create(
            &db,
            NewSource {
                name: format!("Owed {n}"),
                feed_url: format!("https://owed.example/{n}.xml"),
                site_url: None,
                topics: vec!["world".into()],
                language: None,
                breaking: false,
                poll_interval_seconds: None,
            },
        )
        .await
        .unwrap();
        let topic = format!("https://owed.example/{n}.xml");
        store_websub::request_subscribe(
            &db,
            &SubscribeRequest {
                source_id: source.id,
                hub_url: "https://hub.owed.example/".into(),
                topic_url: topic.clone(),
                callback_token: format!("token{n}"),
                secret: herald_store::Secret::new("s".into()),
            },
            now,
        )
        .await
        .unwrap();
        if lease_seconds.is_some() {
            let token = format!("token{n}");
            let verified = store_websub::verify(
                &db,
                source.id,
                &token,
                VerifyMode::Subscribe,
                &topic,
                lease_seconds,
                now,
            )
            .await
            .unwrap();
            assert!(verified);
        }
        sources::delete(&db, source.id).await.unwrap();
        ids.push(source.id);
    }
    // The verified subscription is owed until its lease ends; the one never verified is not.
    let owed = store_websub::departure(&db, ids[0]).await.unwrap().unwrap();
    assert_eq!(owed.hub_url, "https://hub.owed.example/");
    assert_eq!(owed.callback_token, "token0");
    assert_eq!(owed.attempts, 0);
    assert!(
        (owed.give_up_at - (now + Span::seconds(600)))
            .num_seconds()
            .abs()
            <= 1
    );
    assert!(
        store_websub::departure(&db, ids[1])
            .await
            .unwrap()
            .is_none()
    );
    let due = store_websub::departures_due(&db, now + Span::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    // Claimed once: a second claim (another ingest process) gets nothing until the retry.
    let retry = now + Span::seconds(60);
    assert!(
        store_websub::claim_departure(&db, ids[0], now + Span::seconds(1), retry)
            .await
            .unwrap()
    );
    assert!(
        !store_websub::claim_departure(&db, ids[0], now + Span::seconds(2), retry)
            .await
            .unwrap()
    );
    assert_eq!(
        store_websub::departure(&db, ids[0])
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );
    // After the lease's end nothing is owed any more.
    let later = store_websub::departures_due(&db, now + Span::seconds(601), 10)
        .await
        .unwrap();
    assert!(later.is_empty());
    assert!(
        store_websub::departure(&db, ids[0])
            .await
            .unwrap()
            .is_none()
    );
}
