#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests (issue #19, "Faults, measured"): the feed normaliser, Web Push subscription
//! parsing, page cursors and the refresh-token state machine, on generated inputs.

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use herald_auth::{AuthError, ClientInfo, CursorError, CursorKey};
use herald_ingest::normalize::{canonicalize_url, normalize_item, sanitize_html, title_text};
use herald_ingest::parse::RawItem;
use herald_ingest::text::{collapse_whitespace, html_to_text};
use herald_notifier::fakes::FakeWebPush;
use herald_notifier::webpush::SubscriptionKeys;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Url;
use uuid::Uuid;

/// `n` cases; failures are reported with their minimal input, not saved to files (the
/// workspace has no `src/` proptest could keep them beside).
fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

// ------------------------------------------------------------------ the feed normaliser

/// Fragments feeds are made of: markup, entities, scripts, odd whitespace, any character.
fn html_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        any::<char>()
            .prop_filter("a character XML allows", |c| is_xml_char(*c))
            .prop_map(String::from),
        Just("<b>".to_owned()),
        Just("</b>".to_owned()),
        Just("<p>".to_owned()),
        Just("<br/>".to_owned()),
        Just("<script>alert(1)</script>".to_owned()),
        Just("<style>p{}</style>".to_owned()),
        Just("<a href=\"javascript:alert(1)\">x</a>".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("<!-- c -->".to_owned()),
        Just("<![CDATA[x]]>".to_owned()),
        Just("&amp;".to_owned()),
        Just("&lt;".to_owned()),
        Just("&nbsp;".to_owned()),
        Just("&#8217;".to_owned()),
        Just("&#x0;".to_owned()),
        Just("&#99999999;".to_owned()),
        Just("&copy".to_owned()),
        Just("&".to_owned()),
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("\r\n\t\u{a0}\u{2028}".to_owned()),
        Just("<plaintext>".to_owned()),
    ]
}

/// What the feed parser lets through: it drops the control characters XML 1.0 forbids (NUL
/// included) before anything reaches the normaliser.
fn is_xml_char(c: char) -> bool {
    !((c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{fffe}' | '\u{ffff}'))
}

fn html() -> impl Strategy<Value = String> {
    prop::collection::vec(html_piece(), 0..24).prop_map(|pieces| pieces.concat())
}

fn link() -> impl Strategy<Value = String> {
    prop_oneof![
        "https?://[a-z]{1,8}\\.example(:[0-9]{2,4})?(/[a-zA-Z0-9%._~-]{0,8}){0,3}(\\?([a-z_]{1,10}(=[a-z0-9%+]{0,6})?&?){0,4})?(#[a-z]{0,4})?",
        "/[a-z]{0,8}(\\?utm_source=[a-z]{1,4}&id=[0-9]{1,3})?",
        "[a-z]{0,6}:[a-z/]{0,10}",
        ".{0,24}",
    ]
}

fn raw_item() -> impl Strategy<Value = RawItem> {
    (
        prop::option::of(".{0,20}"),
        prop::option::of(link()),
        prop::option::of(html()),
        any::<bool>(),
        prop::option::of(html()),
        prop::option::of(html()),
        prop::option::of(html()),
    )
        .prop_map(
            |(guid, link, title, title_is_text, summary_html, content_html, author)| RawItem {
                guid,
                link,
                title,
                title_is_text,
                summary_html,
                content_html,
                author,
                ..RawItem::default()
            },
        )
}

fn fetched_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn is_normal_text(text: &str) -> bool {
    collapse_whitespace(text) == text && !text.contains('\0')
}

#[test]
fn the_normaliser_never_panics_and_gives_clean_text() {
    let base = Url::parse("https://publisher.example/feeds/world.xml").unwrap();
    proptest!(cases(512), |(item in raw_item())| {
        if let Ok(article) = normalize_item(&item, &base, fetched_at()) {
            prop_assert!(!article.title.is_empty());
            // A headline derived from a link is its decoded path, as the link has it.
            if !article.title_derived {
                prop_assert!(is_normal_text(&article.title), "{:?}", article.title);
            }
            if let Some(summary) = &article.summary {
                prop_assert!(is_normal_text(summary), "{summary:?}");
            }
            if let Some(author) = &article.author {
                prop_assert!(is_normal_text(author), "{author:?}");
            }
            if let Some(url) = &article.canonical_url {
                prop_assert!(matches!(url.scheme(), "http" | "https"));
                prop_assert!(url.fragment().is_none());
            }
            if let Some(content) = &article.content_html {
                prop_assert!(!content.to_ascii_lowercase().contains("<script"), "{content}");
            }
        }
    });
}

#[test]
fn normalising_is_idempotent() {
    proptest!(cases(512), |(fragment in html(), raw_link in link())| {
        // Text normalised, escaped back into HTML and normalised again is the same text.
        let text = html_to_text(&fragment);
        prop_assert!(is_normal_text(&text), "{text:?}");
        let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let again = html_to_text(&escaped);
        prop_assert_eq!(&again, &text);
        // A plain-text title is a fixed point.
        let title = title_text(&fragment, true);
        prop_assert_eq!(title_text(&title, true), title);
        // A canonical URL canonicalises to itself.
        if let Some(url) = canonicalize_url(&raw_link, None) {
            prop_assert_eq!(canonicalize_url(url.as_str(), None), Some(url));
        }
    });
}

#[test]
fn sanitised_html_carries_no_script() {
    let base = Url::parse("https://publisher.example/").unwrap();
    proptest!(cases(256), |(fragment in html())| {
        let clean = sanitize_html(&fragment, &base).to_ascii_lowercase();
        // Every real tag (markup shown as text comes out as `&lt;`) is harmless.
        for tag in clean.split('<').skip(1).map(|t| t.split('>').next().unwrap_or_default()) {
            let name = tag.trim_start_matches('/').split([' ', '/']).next().unwrap_or_default();
            prop_assert!(!matches!(name, "script" | "style" | "iframe"), "{clean}");
            prop_assert!(!tag.contains("javascript:"), "{clean}");
            prop_assert!(!tag.split_whitespace().skip(1).any(|a| a.starts_with("on")), "{clean}");
        }
    });
}

// ------------------------------------------------------- Web Push subscription parsing

#[test]
fn subscription_keys_parse_what_browsers_send_and_refuse_the_rest() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let push = rt.block_on(FakeWebPush::start()).unwrap();
    let browsers: Vec<_> = (0..16).map(|_| push.new_subscription().unwrap()).collect();
    let mut runner = TestRunner::new(cases(256));
    let strategy = (
        0..browsers.len(),
        any::<bool>(),
        0usize..3,
        ".{0,100}",
        ".{0,40}",
    );
    runner
        .run(
            &strategy,
            |(which, padded, spaces, junk_p256dh, junk_auth)| {
                let keys = &browsers[which].subscription.keys;
                let encode = |bytes: &[u8]| {
                    let text = if padded {
                        URL_SAFE.encode(bytes)
                    } else {
                        URL_SAFE_NO_PAD.encode(bytes)
                    };
                    format!("{}{text}{}", " ".repeat(spaces), " ".repeat(spaces))
                };
                // What a browser hands out parses back to the same key bytes, padded or not.
                let parsed = SubscriptionKeys::parse(&encode(keys.p256dh()), &encode(keys.auth()))
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                prop_assert_eq!(parsed.p256dh(), keys.p256dh());
                prop_assert_eq!(parsed.auth(), keys.auth());
                // Any other length is refused.
                let short = &keys.p256dh()[..64];
                prop_assert!(
                    SubscriptionKeys::parse(&encode(short), &encode(keys.auth())).is_err()
                );
                let long_auth = [keys.auth().as_slice(), &[0]].concat();
                prop_assert!(
                    SubscriptionKeys::parse(&encode(keys.p256dh()), &encode(&long_auth)).is_err()
                );
                // A point off the curve is refused.
                let mut off_curve = *keys.p256dh();
                off_curve[64] ^= 1;
                prop_assert!(
                    SubscriptionKeys::parse(&encode(&off_curve), &encode(keys.auth())).is_err()
                );
                // Junk never panics, and is accepted only if it decodes to a valid key pair.
                if let Ok(keys) = SubscriptionKeys::parse(&junk_p256dh, &junk_auth) {
                    prop_assert_eq!(keys.p256dh()[0], 4);
                }
                Ok(())
            },
        )
        .unwrap();
}

// ----------------------------------------------------------------------- page cursors

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_000_000_000i64..250_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

#[test]
fn cursors_decode_what_they_encode_and_refuse_any_change() {
    proptest!(cases(512), |(
        secret in prop::collection::vec(any::<u8>(), 16..64),
        other_secret in prop::collection::vec(any::<u8>(), 16..64),
        scope in ".{0,40}",
        other_scope in ".{0,40}",
        at in time(),
        id in uuid(),
        position in any::<usize>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ".chars().collect::<Vec<_>>()
        ),
    )| {
        let key = CursorKey::from_secret(&secret);
        let cursor = key.encode_time(&scope, at, id);
        prop_assert_eq!(key.decode_time(&scope, Some(&cursor)), Ok(Some((at, id))));
        // Any one character changed, or the cursor cut short, is refused.
        let chars: Vec<char> = cursor.chars().collect();
        let i = position % chars.len();
        if chars[i] != replacement {
            let mut tampered = chars.clone();
            tampered[i] = replacement;
            let tampered: String = tampered.into_iter().collect();
            prop_assert_eq!(
                key.decode_time(&scope, Some(&tampered)),
                Err(CursorError::Foreign),
                "{} accepted as {}", tampered, cursor
            );
        }
        let cut: String = chars[..i].iter().collect();
        prop_assert_eq!(key.decode_time(&scope, Some(&cut)), Err(CursorError::Foreign));
        // Another list's or another key's cursor is refused.
        if other_scope != scope {
            prop_assert_eq!(
                key.decode_time(&other_scope, Some(&cursor)),
                Err(CursorError::Foreign)
            );
        }
        if other_secret != secret {
            prop_assert_eq!(
                CursorKey::from_secret(&other_secret).decode_time(&scope, Some(&cursor)),
                Err(CursorError::Foreign)
            );
        }
    });
}

#[test]
fn made_up_cursors_never_decode() {
    let key = CursorKey::from_secret(b"the cluster's page-cursor key, 32");
    proptest!(cases(512), |(forged in "[A-Za-z0-9_.-]{0,120}")| {
        prop_assert_eq!(
            key.decode_time("articles", Some(&forged)),
            Err(CursorError::Foreign)
        );
    });
}

// ------------------------------------------------------ the refresh-token state machine

/// What a client (or a thief) does with a session's refresh tokens.
#[derive(Debug, Clone)]
enum Step {
    /// Refresh with the newest token.
    Refresh,
    /// Present a token that was already spent (the n-th spent one, modulo how many there are).
    Replay(usize),
    /// Present something that was never a refresh token.
    Garbage(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => Just(Step::Refresh),
        1 => any::<usize>().prop_map(Step::Replay),
        1 => "[A-Za-z0-9_-]{0,60}".prop_map(Step::Garbage),
    ]
}

#[test]
fn a_refresh_token_works_once_and_reuse_ends_the_session() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // No grace window: any second use is reuse (the grace window has its own tests).
    let config = herald_auth::AuthConfig {
        refresh_reuse_grace_seconds: 0,
        signups_per_address_per_hour: 100_000,
        ..herald_auth::AuthConfig::default()
    };
    let (_db, accounts, _) = rt.block_on(herald_tests::accounts::with_one_reader(config));
    let anonymous = ClientInfo {
        ip: None,
        user_agent: None,
    };
    let mut runner = TestRunner::new(cases(24));
    runner
        .run(&prop::collection::vec(step(), 1..12), |steps| {
            rt.block_on(async {
                let tokens = accounts.anonymous(&anonymous).await.unwrap();
                let mut current = tokens.refresh_token.expose().clone();
                let mut access = tokens.access_token.expose().clone();
                let mut spent: Vec<String> = Vec::new();
                let mut live = true;
                for step in &steps {
                    match step {
                        Step::Refresh => {
                            let answer = accounts.refresh(&current).await;
                            if live {
                                let pair = answer.map_err(|e| {
                                    TestCaseError::fail(format!("a live session's refresh: {e:?}"))
                                })?;
                                let next = pair.refresh_token.expose().clone();
                                prop_assert!(next != current && !spent.contains(&next));
                                spent.push(std::mem::replace(&mut current, next));
                                access = pair.access_token.expose().clone();
                            } else {
                                prop_assert!(answer.is_err(), "a revoked session refreshed");
                            }
                        }
                        Step::Replay(n) if !spent.is_empty() => {
                            let old = &spent[n % spent.len()];
                            let answer = accounts.refresh(old).await;
                            prop_assert!(answer.is_err(), "a spent token worked twice");
                            if live {
                                prop_assert!(
                                    matches!(answer, Err(AuthError::SessionEnded)),
                                    "{answer:?}"
                                );
                            }
                            live = false;
                        }
                        Step::Replay(_) => {}
                        Step::Garbage(junk) => {
                            prop_assert!(accounts.refresh(junk).await.is_err());
                        }
                    }
                    // The access token lives exactly as long as the session.
                    let authenticated = accounts.authenticate(&access).await;
                    prop_assert_eq!(authenticated.is_ok(), live, "{:?}", authenticated);
                }
                Ok(())
            })
        })
        .unwrap();
}
