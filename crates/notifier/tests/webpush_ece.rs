//! RFC 8291 payload encryption: the published vector, round trips, tampering, key validation.

use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use aws_lc_rs::encoding::{AsBigEndian, AsDer, EcPrivateKeyBin, Pkcs8V1Der};
use base64::Engine as _;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE, BASE64_URL_SAFE_NO_PAD};
use herald_notifier::webpush::ece::{
    self, HEADER_LEN, KeyError, KeyProblem, MAX_PLAINTEXT_LEN, PushCryptoError, SubscriptionKeys,
};

// RFC 8291 §5 / Appendix A.
const RFC_PLAINTEXT: &[u8] = b"When I grow up, I want to be a watermelon";
const RFC_AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const RFC_UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const RFC_SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
const RFC_BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

fn b64(s: &str) -> Vec<u8> {
    BASE64_URL_SAFE_NO_PAD
        .decode(s)
        .expect("test constant is base64url")
}

/// A browser's side of a subscription: raw private scalar, public point, auth secret.
struct Receiver {
    private: Vec<u8>,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Receiver {
    fn generate() -> Self {
        let key = PrivateKey::generate(&ECDH_P256).expect("key generation");
        let private: EcPrivateKeyBin = key.as_be_bytes().expect("raw scalar");
        let pkcs8: Pkcs8V1Der = key.as_der().expect("pkcs8");
        let public = key.compute_public_key().expect("public key");
        let mut auth = [0u8; 16];
        aws_lc_rs::rand::fill(&mut auth).expect("random");
        Self {
            private: private.as_ref().to_vec(),
            pkcs8: pkcs8.as_ref().to_vec(),
            public: public.as_ref().to_vec(),
            auth,
        }
    }

    fn keys(&self) -> SubscriptionKeys {
        SubscriptionKeys::from_bytes(&self.public, &self.auth).expect("valid keys")
    }
}

#[test]
fn reproduces_rfc8291_appendix_a() {
    let keys = SubscriptionKeys::parse(RFC_UA_PUBLIC, RFC_AUTH).unwrap();
    let salt: [u8; 16] = b64(RFC_SALT).try_into().unwrap();
    let body =
        ece::encrypt_with_key_and_salt(&keys, &b64(RFC_AS_PRIVATE), &salt, RFC_PLAINTEXT).unwrap();
    assert_eq!(BASE64_URL_SAFE_NO_PAD.encode(&body), RFC_BODY);
    assert_eq!(&body[21..HEADER_LEN], b64(RFC_AS_PUBLIC).as_slice());
}

#[test]
fn decrypts_rfc8291_appendix_a() {
    let plaintext = ece::decrypt(&b64(RFC_UA_PRIVATE), &b64(RFC_AUTH), &b64(RFC_BODY)).unwrap();
    assert_eq!(plaintext, RFC_PLAINTEXT);
}

#[test]
fn round_trips_with_fresh_keys() {
    let receiver = Receiver::generate();
    let payload = br#"{"alert_id":"a1","title":"Breaking","story_id":"s1"}"#;
    let body = ece::encrypt(&receiver.keys(), payload).unwrap();
    assert_eq!(body.len(), HEADER_LEN + payload.len() + 1 + 16);
    assert_eq!(&body[16..20], &4096u32.to_be_bytes());
    assert_eq!(body[20], 65);
    assert_eq!(
        ece::decrypt(&receiver.private, &receiver.auth, &body).unwrap(),
        payload
    );
    assert_eq!(
        ece::decrypt(&receiver.pkcs8, &receiver.auth, &body).unwrap(),
        payload
    );
}

#[test]
fn every_message_uses_a_fresh_salt_and_sender_key() {
    let receiver = Receiver::generate();
    let first = ece::encrypt(&receiver.keys(), b"same").unwrap();
    let second = ece::encrypt(&receiver.keys(), b"same").unwrap();
    assert_ne!(first[..16], second[..16], "salt reused");
    assert_ne!(
        first[21..HEADER_LEN],
        second[21..HEADER_LEN],
        "sender key reused"
    );
}

#[test]
fn empty_and_maximum_payloads_round_trip() {
    let receiver = Receiver::generate();
    for len in [0, 1, MAX_PLAINTEXT_LEN] {
        let payload = vec![0xA5; len];
        let body = ece::encrypt(&receiver.keys(), &payload).unwrap();
        assert!(body.len() <= 4096, "body of {} bytes", body.len());
        assert_eq!(
            ece::decrypt(&receiver.private, &receiver.auth, &body).unwrap(),
            payload
        );
    }
}

#[test]
fn oversized_payload_is_refused() {
    let receiver = Receiver::generate();
    let err = ece::encrypt(&receiver.keys(), &vec![0; MAX_PLAINTEXT_LEN + 1]).unwrap_err();
    assert!(matches!(err, PushCryptoError::PayloadTooLarge { len, max: 3993 } if len == 3994));
}

#[test]
fn tampered_bodies_are_refused() {
    let receiver = Receiver::generate();
    let body = ece::encrypt(&receiver.keys(), b"Breaking: watermelons grow up").unwrap();
    let decrypt = |body: &[u8]| ece::decrypt(&receiver.private, &receiver.auth, body);

    for index in [
        0,
        15,
        HEADER_LEN,
        HEADER_LEN + 5,
        body.len() - 17,
        body.len() - 1,
    ] {
        let mut tampered = body.clone();
        tampered[index] ^= 0x01;
        assert!(
            matches!(decrypt(&tampered), Err(PushCryptoError::Decryption)),
            "flipped byte {index} accepted"
        );
    }
    // A different sender key in the header: either not a curve point, or the wrong secret.
    let mut tampered = body.clone();
    tampered[40] ^= 0x01;
    assert!(decrypt(&tampered).is_err());

    assert!(
        decrypt(&body[..body.len() - 1]).is_err(),
        "truncated body accepted"
    );
    assert!(
        decrypt(&body[..HEADER_LEN]).is_err(),
        "header-only body accepted"
    );
    assert!(decrypt(&body[..10]).is_err(), "truncated header accepted");
    let mut extended = body.clone();
    extended.push(0);
    assert!(decrypt(&extended).is_err(), "extended body accepted");

    let wrong_auth = [0u8; 16];
    assert!(matches!(
        ece::decrypt(&receiver.private, &wrong_auth, &body),
        Err(PushCryptoError::Decryption)
    ));
    let stranger = Receiver::generate();
    assert!(matches!(
        ece::decrypt(&stranger.private, &receiver.auth, &body),
        Err(PushCryptoError::Decryption)
    ));
}

#[test]
fn ece_crate_decrypts_our_messages() {
    let receiver = Receiver::generate();
    let payload = br#"{"title":"cross-check","body":"decrypted by the ece crate (OpenSSL)"}"#;
    let body = ece::encrypt(&receiver.keys(), payload).unwrap();
    let components = ::ece::EcKeyComponents::new(receiver.private.clone(), receiver.public.clone());
    assert_eq!(
        ::ece::decrypt(&components, &receiver.auth, &body).unwrap(),
        payload
    );
}

#[test]
fn we_decrypt_the_ece_crates_messages() {
    let receiver = Receiver::generate();
    let payload = b"encrypted by the ece crate, with its own padding";
    let body = ::ece::encrypt(&receiver.public, &receiver.auth, payload).unwrap();
    assert_eq!(
        ece::decrypt(&receiver.private, &receiver.auth, &body).unwrap(),
        payload
    );
}

#[test]
fn parses_padded_and_unpadded_keys() {
    let receiver = Receiver::generate();
    let unpadded = SubscriptionKeys::parse(
        &BASE64_URL_SAFE_NO_PAD.encode(&receiver.public),
        &BASE64_URL_SAFE_NO_PAD.encode(receiver.auth),
    )
    .unwrap();
    let padded = SubscriptionKeys::parse(
        &BASE64_URL_SAFE.encode(&receiver.public),
        &BASE64_URL_SAFE.encode(receiver.auth),
    )
    .unwrap();
    assert_eq!(unpadded, padded);
    assert_eq!(unpadded.p256dh().as_slice(), receiver.public.as_slice());
    assert_eq!(unpadded.auth(), &receiver.auth);
    assert!(!format!("{unpadded:?}").contains(&BASE64_URL_SAFE_NO_PAD.encode(receiver.auth)));
}

#[test]
fn refuses_bad_p256dh_keys() {
    let good = b64(RFC_UA_PUBLIC);
    let parse = |p256dh: &[u8]| {
        SubscriptionKeys::parse(&BASE64_URL_SAFE_NO_PAD.encode(p256dh), RFC_AUTH).unwrap_err()
    };

    let mut off_curve = good.clone();
    off_curve[64] ^= 0x01;
    assert_eq!(parse(&off_curve), KeyError::P256dh(KeyProblem::NotOnCurve));

    let mut zero_point = vec![0u8; 65];
    zero_point[0] = 0x04;
    assert_eq!(parse(&zero_point), KeyError::P256dh(KeyProblem::NotOnCurve));

    let mut compressed = vec![0x02 | (good[64] & 1)];
    compressed.extend_from_slice(&good[1..33]);
    assert_eq!(
        parse(&compressed),
        KeyError::P256dh(KeyProblem::NotUncompressed)
    );

    let mut hybrid_prefix = good.clone();
    hybrid_prefix[0] = 0x06;
    assert_eq!(
        parse(&hybrid_prefix),
        KeyError::P256dh(KeyProblem::NotUncompressed)
    );

    assert_eq!(
        parse(&good[..64]),
        KeyError::P256dh(KeyProblem::WrongLength {
            expected: 65,
            actual: 64
        })
    );
    assert_eq!(
        SubscriptionKeys::parse("not base64!", RFC_AUTH).unwrap_err(),
        KeyError::P256dh(KeyProblem::NotBase64Url)
    );
}

#[test]
fn refuses_bad_auth_secrets() {
    let short = BASE64_URL_SAFE_NO_PAD.encode([7u8; 15]);
    assert_eq!(
        SubscriptionKeys::parse(RFC_UA_PUBLIC, &short).unwrap_err(),
        KeyError::Auth(KeyProblem::WrongLength {
            expected: 16,
            actual: 15
        })
    );
    assert_eq!(
        SubscriptionKeys::parse(RFC_UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSI*g").unwrap_err(),
        KeyError::Auth(KeyProblem::NotBase64Url)
    );
}

#[test]
fn refuses_standard_base64_alphabet() {
    // The RFC key contains '-' and '_', which standard base64 writes as '+' and '/'.
    let standard = BASE64_STANDARD.encode(b64(RFC_UA_PUBLIC));
    assert!(standard.contains('+') || standard.contains('/'));
    assert_eq!(
        SubscriptionKeys::parse(&standard, RFC_AUTH).unwrap_err(),
        KeyError::P256dh(KeyProblem::NotBase64Url)
    );
}
