//! RFC 8292 VAPID tokens and RFC 8030 request assembly.

use std::sync::Arc;

use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use herald_notifier::webpush::{
    self, SubscriptionKeys, Urgency, VapidError, VapidKeys, VapidSigner, WebPushError,
    WebPushSubscription, build_request, is_valid_topic, topic_for_story, verify_vapid,
};
use url::Url;

const SUBJECT: &str = "mailto:push@herald.example";

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URL")
}

fn signer() -> VapidSigner {
    VapidSigner::new(VapidKeys::generate().expect("keys"), SUBJECT.to_owned()).expect("signer")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// The `t=` token inside an `Authorization` value.
fn jwt_of(header: &str) -> &str {
    header
        .split(", ")
        .find_map(|p| p.strip_prefix("vapid t=").or_else(|| p.strip_prefix("t=")))
        .expect("t parameter")
}

#[test]
fn signed_header_verifies() {
    let signer = signer();
    let endpoint = url("https://fcm.googleapis.com/fcm/send/abc:def");
    let header = signer.authorization(&endpoint, t0()).unwrap();
    assert!(header.starts_with("vapid t="));
    assert!(header.ends_with(&format!(", k={}", signer.keys().public_key_base64url())));

    let claims = verify_vapid(&header, &endpoint, t0()).unwrap();
    assert_eq!(claims.aud, "https://fcm.googleapis.com");
    assert_eq!(claims.exp, t0().timestamp() + 12 * 3600);
    assert_eq!(claims.sub, SUBJECT);
    assert_eq!(&claims.public_key, signer.keys().public_key());

    let signature = BASE64_URL_SAFE_NO_PAD
        .decode(jwt_of(&header).rsplit('.').next().unwrap())
        .unwrap();
    assert_eq!(signature.len(), 64, "JOSE r||s form");
}

#[test]
fn jsonwebtoken_accepts_our_token() {
    #[derive(serde::Deserialize)]
    struct Claims {
        aud: String,
        sub: String,
    }
    let signer = signer();
    let endpoint = url("https://updates.push.services.mozilla.com/wpush/v2/xyz");
    let header = signer.authorization(&endpoint, Utc::now()).unwrap();
    let public = signer.keys().public_key();
    let key = jsonwebtoken::DecodingKey::from_ec_components(
        &BASE64_URL_SAFE_NO_PAD.encode(&public[1..33]),
        &BASE64_URL_SAFE_NO_PAD.encode(&public[33..]),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://updates.push.services.mozilla.com"]);
    let token = jsonwebtoken::decode::<Claims>(jwt_of(&header), &key, &validation).unwrap();
    assert_eq!(
        token.claims.aud,
        "https://updates.push.services.mozilla.com"
    );
    assert_eq!(token.claims.sub, SUBJECT);
}

#[test]
fn wrong_audience_is_refused() {
    let signer = signer();
    let header = signer
        .authorization(&url("https://fcm.googleapis.com/fcm/send/1"), t0())
        .unwrap();
    let err = verify_vapid(&header, &url("https://web.push.apple.com/QGx"), t0()).unwrap_err();
    assert_eq!(
        err,
        VapidError::WrongAudience {
            expected: "https://web.push.apple.com".to_owned(),
            actual: "https://fcm.googleapis.com".to_owned(),
        }
    );
    // The port is part of the origin.
    let err = verify_vapid(
        &header,
        &url("https://fcm.googleapis.com:8443/fcm/send/1"),
        t0(),
    );
    assert!(matches!(err, Err(VapidError::WrongAudience { .. })));
}

#[test]
fn expired_and_far_future_tokens_are_refused() {
    let signer = signer();
    let endpoint = url("https://push.example.net/send/1");
    let header = signer.authorization(&endpoint, t0()).unwrap();
    assert_eq!(
        verify_vapid(&header, &endpoint, t0() + Duration::hours(12)),
        Err(VapidError::Expired)
    );
    assert_eq!(
        verify_vapid(&header, &endpoint, t0() - Duration::hours(13)),
        Err(VapidError::ExpiryTooFar)
    );
}

#[test]
fn forged_and_malformed_headers_are_refused() {
    let signer = signer();
    let other = self::signer();
    let endpoint = url("https://push.example.net/send/1");
    let header = signer.authorization(&endpoint, t0()).unwrap();

    // Same token, someone else's key.
    let forged = format!(
        "vapid t={}, k={}",
        jwt_of(&header),
        other.keys().public_key_base64url()
    );
    assert_eq!(
        verify_vapid(&forged, &endpoint, t0()),
        Err(VapidError::BadSignature)
    );

    // Claims swapped for a longer expiry, signature kept.
    let jwt = jwt_of(&header);
    let mut parts: Vec<&str> = jwt.split('.').collect();
    let claims = BASE64_URL_SAFE_NO_PAD.encode(format!(
        r#"{{"aud":"https://push.example.net","exp":{},"sub":"{SUBJECT}"}}"#,
        t0().timestamp() + 20 * 3600
    ));
    parts[1] = &claims;
    let tampered = format!(
        "vapid t={}, k={}",
        parts.join("."),
        signer.keys().public_key_base64url()
    );
    assert_eq!(
        verify_vapid(&tampered, &endpoint, t0()),
        Err(VapidError::BadSignature)
    );

    for bad in [
        "",
        "vapid",
        "Bearer abc",
        "vapid t=abc",
        "vapid k=BP4z9KsN6nGRTbVYI",
        "WebPush eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.e30.AAAA",
    ] {
        assert!(
            matches!(
                verify_vapid(bad, &endpoint, t0()),
                Err(VapidError::Malformed(_))
            ),
            "{bad:?} accepted"
        );
    }
    // Parameter order and spacing are not significant.
    let k = signer.keys().public_key_base64url();
    let reordered = format!("vapid k={k},t={jwt}");
    assert!(verify_vapid(&reordered, &endpoint, t0()).is_ok());
}

#[test]
fn caches_one_token_per_origin() {
    let signer = signer();
    let a1 = signer
        .authorization(&url("https://fcm.googleapis.com/fcm/send/one"), t0())
        .unwrap();
    let a2 = signer
        .authorization(
            &url("https://fcm.googleapis.com:443/fcm/send/two?x=1"),
            t0() + Duration::minutes(30),
        )
        .unwrap();
    assert!(Arc::ptr_eq(&a1, &a2), "same origin must reuse the token");

    let b = signer
        .authorization(&url("https://web.push.apple.com/QGx"), t0())
        .unwrap();
    assert_ne!(a1, b);
    assert_eq!(
        verify_vapid(&b, &url("https://web.push.apple.com/other"), t0())
            .unwrap()
            .aud,
        "https://web.push.apple.com"
    );

    let c = signer
        .authorization(&url("https://fcm.googleapis.com:8443/fcm/send/one"), t0())
        .unwrap();
    assert_ne!(a1, c, "a different port is a different origin");
}

#[test]
fn resigns_near_expiry() {
    let signer = signer();
    let endpoint = url("https://push.example.net/send/1");
    let first = signer.authorization(&endpoint, t0()).unwrap();

    // Reused until one hour before the 12-hour expiry.
    let late = t0() + Duration::hours(11) - Duration::seconds(1);
    assert!(Arc::ptr_eq(
        &first,
        &signer.authorization(&endpoint, late).unwrap()
    ));

    let near = t0() + Duration::hours(11);
    let renewed = signer.authorization(&endpoint, near).unwrap();
    assert!(!Arc::ptr_eq(&first, &renewed));
    let claims = verify_vapid(&renewed, &endpoint, near).unwrap();
    assert_eq!(claims.exp, near.timestamp() + 12 * 3600);
    // The renewed token is then cached in turn.
    assert!(Arc::ptr_eq(
        &renewed,
        &signer
            .authorization(&endpoint, near + Duration::hours(1))
            .unwrap()
    ));

    // Long past expiry.
    let much_later = t0() + Duration::days(3);
    let again = signer.authorization(&endpoint, much_later).unwrap();
    assert!(verify_vapid(&again, &endpoint, much_later).is_ok());

    // A clock that jumped backwards must not keep a token whose expiry is now > 24 h away.
    let earlier = much_later - Duration::hours(20);
    let rewound = signer.authorization(&endpoint, earlier).unwrap();
    assert!(verify_vapid(&rewound, &endpoint, earlier).is_ok());
}

#[test]
fn stays_correct_past_the_origin_cache_bound() {
    let signer = signer();
    let first = url("https://push0.example.net/x");
    let header = signer.authorization(&first, t0()).unwrap();
    for i in 1..1100 {
        let endpoint = url(&format!("https://push{i}.example.net/x"));
        signer.authorization(&endpoint, t0()).unwrap();
    }
    let again = signer.authorization(&first, t0()).unwrap();
    assert!(verify_vapid(&header, &first, t0()).is_ok());
    assert!(verify_vapid(&again, &first, t0()).is_ok());
}

#[test]
fn signer_is_shared_across_threads() {
    let signer = Arc::new(signer());
    let endpoint = url("https://push.example.net/send/1");
    let headers: Vec<Arc<str>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| signer.authorization(&endpoint, t0()).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(headers.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])));
}

#[test]
fn refuses_bad_subjects_and_endpoints() {
    for subject in [
        "push@herald.example",
        "mailto:",
        "http://herald.example",
        "",
    ] {
        assert_eq!(
            VapidSigner::new(VapidKeys::generate().unwrap(), subject.to_owned()).unwrap_err(),
            VapidError::InvalidSubject,
            "{subject:?} accepted"
        );
    }
    assert!(
        VapidSigner::new(
            VapidKeys::generate().unwrap(),
            "https://herald.example/contact".into()
        )
        .is_ok()
    );
    assert_eq!(
        signer()
            .authorization(&url("mailto:push@example.net"), t0())
            .unwrap_err(),
        VapidError::EndpointWithoutOrigin
    );
}

#[test]
fn keys_round_trip_and_redact() {
    let keys = VapidKeys::generate().unwrap();
    let pkcs8 = keys.to_pkcs8().unwrap();
    let reloaded = VapidKeys::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(reloaded.public_key(), keys.public_key());

    let public = BASE64_URL_SAFE_NO_PAD
        .decode(keys.public_key_base64url())
        .unwrap();
    assert_eq!(public.len(), 65);
    assert_eq!(public[0], 0x04);

    let debug = format!("{keys:?}");
    assert!(debug.contains("[redacted]"));
    assert!(!debug.contains(&BASE64_URL_SAFE_NO_PAD.encode(&pkcs8)));

    let raw = PrivateKey::generate(&ECDH_P256).unwrap();
    let scalar: EcPrivateKeyBin = raw.as_be_bytes().unwrap();
    let from_raw = VapidKeys::from_raw_private_key(scalar.as_ref()).unwrap();
    assert_eq!(
        from_raw.public_key().as_slice(),
        raw.compute_public_key().unwrap().as_ref()
    );
    assert!(!format!("{from_raw:?}").contains(&BASE64_URL_SAFE_NO_PAD.encode(scalar.as_ref())));

    assert_eq!(
        VapidKeys::from_pkcs8(b"not a key").unwrap_err(),
        VapidError::InvalidKey
    );
    assert_eq!(
        VapidKeys::from_raw_private_key(&[0u8; 32]).unwrap_err(),
        VapidError::InvalidKey
    );
}

#[test]
fn builds_a_complete_request() {
    let receiver = PrivateKey::generate(&ECDH_P256).unwrap();
    let receiver_raw: EcPrivateKeyBin = receiver.as_be_bytes().unwrap();
    let auth = [9u8; 16];
    let subscription = WebPushSubscription {
        endpoint: url("https://push.example.net/wpush/v2/abc"),
        keys: SubscriptionKeys::from_bytes(receiver.compute_public_key().unwrap().as_ref(), &auth)
            .unwrap(),
    };
    let signer = signer();
    let topic = topic_for_story("story-42");
    let payload = br#"{"alert_id":"1","title":"t","story_id":"story-42"}"#;
    let request = build_request(
        &subscription,
        payload,
        &signer,
        86_400,
        Urgency::High,
        Some(&topic),
        t0(),
    )
    .unwrap();

    assert_eq!(request.endpoint, subscription.endpoint);
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("content-encoding"), Some("aes128gcm"));
    assert_eq!(header("content-type"), Some("application/octet-stream"));
    assert_eq!(header("ttl"), Some("86400"));
    assert_eq!(header("urgency"), Some("high"));
    assert_eq!(header("topic"), Some(topic.as_str()));
    let claims = verify_vapid(header("authorization").unwrap(), &request.endpoint, t0()).unwrap();
    assert_eq!(claims.aud, "https://push.example.net");
    for (name, _) in &request.headers {
        assert!(http::HeaderName::from_bytes(name.as_bytes()).is_ok());
        assert_eq!(*name, name.to_ascii_lowercase());
    }
    assert_eq!(
        webpush::decrypt(receiver_raw.as_ref(), &auth, &request.body).unwrap(),
        payload
    );
    assert!(!format!("{request:?}").contains(jwt_of(header("authorization").unwrap())));

    let no_topic = build_request(
        &subscription,
        b"x",
        &signer,
        0,
        Urgency::VeryLow,
        None,
        t0(),
    )
    .unwrap();
    assert!(no_topic.headers.iter().all(|(n, _)| *n != "topic"));
    assert!(
        no_topic
            .headers
            .contains(&("urgency", "very-low".to_owned()))
    );
    assert!(no_topic.headers.contains(&("ttl", "0".to_owned())));

    for bad in ["", "has space", "a.b", "x".repeat(33).as_str()] {
        let err = build_request(
            &subscription,
            b"x",
            &signer,
            60,
            Urgency::Normal,
            Some(bad),
            t0(),
        );
        assert!(
            matches!(err, Err(WebPushError::InvalidTopic)),
            "{bad:?} accepted"
        );
    }
    let err = build_request(
        &subscription,
        &[0; 3994],
        &signer,
        60,
        Urgency::Normal,
        None,
        t0(),
    );
    assert!(matches!(
        err,
        Err(WebPushError::Crypto(
            webpush::PushCryptoError::PayloadTooLarge { .. }
        ))
    ));
}

#[test]
fn story_topics_are_valid_and_stable() {
    let a = topic_for_story("0190a6b2-7f3e-7c41-9d2a-5e8f1b2c3d4e");
    assert_eq!(a.len(), 32);
    assert!(is_valid_topic(&a));
    assert_eq!(a, topic_for_story("0190a6b2-7f3e-7c41-9d2a-5e8f1b2c3d4e"));
    assert_ne!(a, topic_for_story("0190a6b2-7f3e-7c41-9d2a-5e8f1b2c3d4f"));
    assert!(is_valid_topic(&topic_for_story("")));
    assert_eq!(Urgency::default(), Urgency::Normal);
    assert_eq!(Urgency::Low.as_str(), "low");
}
