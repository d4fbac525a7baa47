//! Per-message cost of the Web Push fast path: payload encryption and a full request with a cached VAPID token.

use std::hint::black_box;

use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald_notifier::webpush::{
    SubscriptionKeys, Urgency, VapidKeys, VapidSigner, WebPushSubscription, build_request, ece,
    topic_for_story,
};
use url::Url;

fn subscription() -> WebPushSubscription {
    let receiver = PrivateKey::generate(&ECDH_P256).expect("receiver key");
    let public = receiver.compute_public_key().expect("receiver public key");
    WebPushSubscription {
        endpoint: Url::parse("https://fcm.googleapis.com/fcm/send/bench-device").expect("url"),
        keys: SubscriptionKeys::from_bytes(public.as_ref(), &[7u8; 16]).expect("keys"),
    }
}

fn payload() -> Vec<u8> {
    let mut payload =
        br#"{"alert_id":"0190a6b2-7f3e-7c41-9d2a-5e8f1b2c3d4e","title":"Breaking","body":""#
            .to_vec();
    payload.resize(290, b'x');
    payload.extend_from_slice(br#"","x":1}"#);
    payload.truncate(300);
    payload
}

fn bench_webpush(c: &mut Criterion) {
    let subscription = subscription();
    let payload = payload();
    let signer = VapidSigner::new(
        VapidKeys::generate().expect("vapid keys"),
        "mailto:push@herald.example".to_owned(),
    )
    .expect("signer");
    let topic = topic_for_story("story-42");
    let now = Utc::now();
    // Warm the per-origin token cache so the loop measures the steady state.
    signer
        .authorization(&subscription.endpoint, now)
        .expect("vapid token");

    let mut group = c.benchmark_group("webpush");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt_300B", |b| {
        b.iter(|| ece::encrypt(black_box(&subscription.keys), black_box(&payload)))
    });
    group.bench_function("build_request_300B_cached_vapid", |b| {
        b.iter(|| {
            build_request(
                black_box(&subscription),
                black_box(&payload),
                &signer,
                86_400,
                Urgency::High,
                Some(&topic),
                now,
            )
        })
    });
    // Criterion calls the routine again after warm-up, so the counter lives outside it.
    let mut origin = 0u64;
    group.bench_function("vapid_sign_uncached", |b| {
        b.iter(|| {
            // A new origin each time forces a fresh ES256 signature.
            origin += 1;
            let endpoint = Url::parse(&format!("https://push{origin}.example.net/x")).expect("url");
            signer.authorization(&endpoint, now).expect("vapid token")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_webpush);
criterion_main!(benches);
