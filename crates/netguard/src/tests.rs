use super::*;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid address in table")
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("valid url")
}

/// Every special-purpose range, its edges, and public neighbours: (address, refused).
const TABLE: &[(&str, bool)] = &[
    // IPv4 special-purpose registry
    ("0.0.0.0", true),
    ("0.1.2.3", true),
    ("0.255.255.255", true),
    ("1.0.0.0", false),
    ("9.255.255.255", false),
    ("10.0.0.0", true),
    ("10.255.255.255", true),
    ("11.0.0.0", false),
    ("100.63.255.255", false),
    ("100.64.0.0", true),
    ("100.127.255.255", true),
    ("100.128.0.0", false),
    ("126.255.255.255", false),
    ("127.0.0.1", true),
    ("127.255.255.254", true),
    ("128.0.0.0", false),
    ("169.253.255.255", false),
    ("169.254.0.1", true),
    ("169.254.169.254", true),
    ("169.255.0.0", false),
    ("172.15.255.255", false),
    ("172.16.0.1", true),
    ("172.31.255.255", true),
    ("172.32.0.1", false),
    ("192.0.0.8", true),
    ("192.0.0.255", true),
    ("192.0.1.0", false),
    ("192.0.2.1", true),
    ("192.88.99.1", true),
    ("192.88.100.1", false),
    ("192.167.255.255", false),
    ("192.168.1.1", true),
    ("192.169.0.0", false),
    ("198.17.255.255", false),
    ("198.18.0.1", true),
    ("198.19.255.255", true),
    ("198.20.0.1", false),
    ("198.51.100.7", true),
    ("203.0.113.9", true),
    ("223.255.255.255", false),
    ("224.0.0.1", true),
    ("239.255.255.250", true),
    ("240.0.0.1", true),
    ("255.255.255.255", true),
    ("8.8.8.8", false),
    ("1.1.1.1", false),
    ("142.250.74.110", false),
    // IPv6 special-purpose registry
    ("::", true),
    ("::1", true),
    ("::2", true),
    ("::127.0.0.1", true),
    ("::8.8.8.8", true),
    ("::ffff:127.0.0.1", true),
    ("::ffff:10.1.2.3", true),
    ("::ffff:169.254.169.254", true),
    ("::ffff:100.64.0.1", true),
    ("::ffff:8.8.8.8", false),
    ("::ffff:0:127.0.0.1", true),
    ("::ffff:0:8.8.8.8", false),
    ("64:ff9b::7f00:1", true),
    ("64:ff9b::a9fe:a9fe", true),
    ("64:ff9b::c612:1", true),
    ("64:ff9b::808:808", false),
    ("64:ff9b:1::1", true),
    ("100::1", true),
    ("100:0:0:1::1", false),
    ("2001::1", true),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", true),
    ("2001:2::1", true),
    ("2001:10::1", true),
    ("2001:20::1", true),
    ("2001:db8::1", true),
    ("2001:db9::1", false),
    ("2002:7f00:1::", true),
    ("2002:a00:1::1", true),
    ("2002:c0a8:101::1", true),
    ("2002:808:808::", false),
    ("3fff::1", true),
    ("3fff:fff::1", true),
    ("3fff:1000::1", false),
    ("5f00::1", true),
    ("fc00::1", true),
    ("fd12:3456::1", true),
    ("fe80::1", true),
    ("febf::1", true),
    ("fec0::1", true),
    ("ff02::1", true),
    ("ff05::2", true),
    ("2606:4700:4700::1111", false),
    ("2001:4860:4860::8888", false),
    ("2607:f8b0:4004:800::200e", false),
];

#[test]
fn the_special_purpose_table() {
    for (text, refused) in TABLE {
        assert_eq!(is_forbidden(ip(text)), *refused, "{text}");
        assert_eq!(blocked_range(ip(text)).is_some(), *refused, "{text}");
    }
}

#[test]
fn wrapped_ipv4_is_named_by_its_wrapper() {
    assert_eq!(
        blocked_range(ip("64:ff9b::7f00:1")),
        Some("NAT64 (64:ff9b::/96)")
    );
    assert_eq!(
        blocked_range(ip("::ffff:10.0.0.1")),
        Some("IPv4-mapped (::ffff:0:0/96)")
    );
    assert_eq!(blocked_range(ip("10.0.0.1")), Some("private (10/8)"));
    assert_eq!(blocked_range(ip("8.8.8.8")), None);
}

#[test]
fn named_private_hosts_and_only_they_may_be_private() {
    let policy = AddressPolicy::with_private_hosts(["Feeds.Corp.", "10.0.0.5", "[::1]"]);
    assert!(policy.allows_private("feeds.corp"));
    assert!(policy.allows_private("FEEDS.CORP."));
    assert!(!policy.allows_private("other.corp"));
    assert!(!policy.allows_private("feeds.corp.evil.example"));
    assert_eq!(check_url(&url("http://10.0.0.5/rss"), &policy), Ok(()));
    assert_eq!(check_url(&url("http://[::1]:8080/rss"), &policy), Ok(()));
    assert_eq!(
        check_url(&url("http://10.0.0.6/rss"), &policy),
        Err(Refusal::Blocked(ip("10.0.0.6")))
    );
    assert!(AddressPolicy::allow_all().allows_private("anything"));
    assert!(!AddressPolicy::public_only().allows_private("localhost"));
}

#[test]
fn ip_literal_urls_are_checked() {
    let refused: &[&str] = &[
        "http://127.0.0.1:8080/feed",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "https://[2002:a9fe:a9fe::1]/",
        // The URL parser normalises other spellings of IPv4 into a literal.
        "http://0x7f.1/",
        "http://2130706433/",
        "http://017700000001/",
    ];
    for text in refused {
        assert!(
            matches!(
                check_url(&url(text), &false.into()),
                Err(Refusal::Blocked(_))
            ),
            "{text}"
        );
        assert_eq!(check_url(&url(text), &true.into()), Ok(()), "{text}");
    }
    assert_eq!(check_url(&url("https://8.8.8.8/"), &false.into()), Ok(()));
    assert_eq!(
        check_url(&url("https://example.com/feed"), &false.into()),
        Ok(())
    );
    assert_eq!(
        check_url(&url("file:///etc/passwd"), &true.into()),
        Err(Refusal::UnsupportedScheme("file".into()))
    );
}

#[test]
fn redirect_hops_are_counted_and_checked() {
    let first = url("https://example.com/feed");
    let policy = AddressPolicy::public_only();
    assert_eq!(
        check_redirect(
            &url("https://example.org/"),
            std::slice::from_ref(&first),
            1,
            &policy
        ),
        Ok(())
    );
    assert_eq!(
        check_redirect(
            &url("https://example.org/"),
            &[first.clone(), first.clone()],
            1,
            &policy
        ),
        Err(Refusal::TooManyRedirects { max: 1 })
    );
    assert_eq!(
        check_redirect(&url("http://169.254.169.254/"), &[first], 5, &policy),
        Err(Refusal::Blocked(ip("169.254.169.254")))
    );
}

#[tokio::test]
async fn the_resolver_drops_refused_answers_unless_the_host_is_allowed() {
    let refused = GuardedResolver::default()
        .lookup("localhost")
        .await
        .expect_err("localhost is loopback");
    assert!(
        refused.downcast_ref::<Refusal>().is_some(),
        "{refused}: not a refusal"
    );
    let allowed = GuardedResolver {
        policy: AddressPolicy::with_private_hosts(["localhost"]),
    }
    .lookup("localhost")
    .await
    .expect("a named host keeps its addresses");
    assert!(allowed.iter().all(|a| a.ip().is_loopback()), "{allowed:?}");
}

/// A server answering every request with `status` and `extra` headers; its port.
async fn serve(status: &'static str, extra: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let answer = format!("HTTP/1.1 {status}\r\n{extra}content-length: 2\r\n\r\nok");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    port
}

fn refusal_in(error: &reqwest::Error) -> Option<Refusal> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        source = e.source();
    }
    None
}

#[tokio::test]
async fn a_guarded_client_refuses_names_and_redirects_that_lead_inside() {
    let target = serve("200 OK", String::new()).await;
    let client = guard(reqwest::Client::builder(), &AddressPolicy::public_only(), 3)
        .build()
        .expect("client");
    // A name that resolves to loopback: the resolver refuses it, so nothing connects.
    let error = client
        .get(format!("http://localhost:{target}/"))
        .send()
        .await
        .expect_err("localhost is refused");
    assert!(
        matches!(refusal_in(&error), Some(Refusal::Blocked(ip)) if ip.is_loopback()),
        "{error:?}"
    );

    // A host the operator named may be private, but its redirect to another inside address
    // is checked like any other request.
    let redirector = serve(
        "302 Found",
        format!("location: http://127.0.0.1:{target}/secret\r\n"),
    )
    .await;
    let named = AddressPolicy::with_private_hosts(["localhost"]);
    let client = guard(reqwest::Client::builder(), &named, 3)
        .build()
        .expect("client");
    let error = client
        .get(format!("http://localhost:{redirector}/"))
        .send()
        .await
        .expect_err("the redirect is refused");
    assert_eq!(
        refusal_in(&error),
        Some(Refusal::Blocked(ip("127.0.0.1"))),
        "{error:?}"
    );
    // The named host itself is reachable.
    let ok = client
        .get(format!("http://localhost:{target}/"))
        .send()
        .await
        .expect("the named host answers");
    assert_eq!(ok.status(), reqwest::StatusCode::OK);

    // With no redirects allowed, a redirect is an error, not a hop.
    let client = guard(reqwest::Client::builder(), &AddressPolicy::allow_all(), 0)
        .build()
        .expect("client");
    let error = client
        .get(format!("http://127.0.0.1:{redirector}/"))
        .send()
        .await
        .expect_err("no redirect is followed");
    assert_eq!(
        refusal_in(&error),
        Some(Refusal::TooManyRedirects { max: 0 }),
        "{error:?}"
    );
}
