#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The console's router in process: the page, its strict CSP, revalidation with 304, the
//! assets it links (hashed, immutable, ETag), no inline script and a label for every control.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use herald_store::testing::TestDb;
use herald_web::{Web, WebConfig, WebState, console_router, reader_router};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

async fn app() -> (Router, TestDb) {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let state = WebState(Arc::new(Web {
        db,
        config: WebConfig::default(),
        vapid_public_key: "BExampleKey".into(),
        cursor_key: herald_auth::CursorKey::from_secret(b"test cursor key"),
    }));
    // The binary serves both; the asset route comes with the reader's router.
    let router = reader_router(state.clone()).merge(console_router(state));
    (router, test_db)
}

async fn get(
    router: &Router,
    path: &str,
    if_none_match: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::get(path);
    if let Some(etag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Every `attr="..."` value in `html`.
fn values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

#[tokio::test]
async fn the_console_page_has_a_strict_csp_and_revalidates() {
    let (router, _db) = app().await;
    let (status, headers, body) = get(&router, "/console", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "private, no-cache");
    assert!(body.contains("<h1 id=\"signin-heading\">Sign in to the newsroom</h1>"));
    assert!(body.contains("data-stories-poll-ms=\"3000\""));
    // Should the script not run, the password is posted, never put in a URL.
    assert!(body.contains("<form id=\"signin-form\" method=\"post\""));

    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let (again, _, empty) = get(&router, "/console", Some(&etag)).await;
    assert_eq!(again, StatusCode::NOT_MODIFIED);
    assert!(empty.is_empty());
    let strong = etag.trim_start_matches("W/");
    let (weakly, _, _) = get(&router, "/console", Some(strong)).await;
    assert_eq!(weakly, StatusCode::NOT_MODIFIED, "compared weakly");
    let (other, _, _) = get(&router, "/console", Some("W/\"other\"")).await;
    assert_eq!(other, StatusCode::OK);
}

#[tokio::test]
async fn the_page_loads_only_its_own_hashed_assets_and_no_inline_script() {
    let (router, _db) = app().await;
    let (_, _, body) = get(&router, "/console", None).await;
    // Every <script> names a file; no inline script, no inline style, no handler attribute.
    for (at, _) in body.match_indices("<script") {
        let tag = &body[at..at + body[at..].find('>').unwrap()];
        assert!(
            tag.contains("src=\"/assets/"),
            "inline or foreign script: {tag}"
        );
    }
    assert!(!body.contains("style="), "inline style");
    assert!(!body.contains(" onclick=") && !body.contains(" onsubmit="));
    let linked: Vec<&str> = values(&body, "src")
        .into_iter()
        .chain(values(&body, "href"))
        .filter(|v| v.starts_with('/'))
        .collect();
    assert!(linked.len() >= 3, "{linked:?}");
    for url in linked {
        assert!(url.starts_with("/assets/"), "links {url}");
        let (status, headers, bytes) = get(&router, url, None).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert!(!bytes.is_empty());
        let etag = headers[header::ETAG].to_str().unwrap();
        let (again, _, _) = get(&router, url, Some(etag)).await;
        assert_eq!(again, StatusCode::NOT_MODIFIED, "{url}");
    }
    // Nothing from another origin: no absolute URL in the page but the ones it shows as text.
    assert!(
        !body.contains("src=\"http"),
        "a script or image from another origin"
    );
    assert!(!body.contains("href=\"http"), "a link to another origin");
}

#[tokio::test]
async fn every_form_control_has_a_label() {
    let (router, _db) = app().await;
    let (_, _, body) = get(&router, "/console", None).await;
    let labelled: Vec<&str> = values(&body, "for");
    for tag in ["<input", "<select", "<textarea"] {
        for (at, _) in body.match_indices(tag) {
            let element = &body[at..at + body[at..].find('>').unwrap()];
            let id = values(element, "id");
            let id = id.first().unwrap_or_else(|| panic!("no id: {element}"));
            assert!(labelled.contains(id), "no <label for=\"{id}\">");
        }
    }
}

#[tokio::test]
async fn the_script_calls_only_v1_routes_and_never_uses_local_storage_or_eval() {
    let script = herald_web::assets::all()
        .find(|a| a.asset.name == "console/app.js")
        .expect("console/app.js is compiled in");
    let js = std::str::from_utf8(script.asset.bytes).unwrap();
    // Every path the script fetches starts with /v1/ (template literals included).
    for quote in ['"', '`'] {
        let needle = format!("{quote}/");
        for (at, _) in js.match_indices(&needle) {
            let path = &js[at + 1..];
            let path = &path[..path.find(quote).unwrap()];
            if path.starts_with("/v1/") || path == "/" {
                continue;
            }
            panic!("the console script names {path}");
        }
    }
    assert!(
        !js.contains("localStorage.setItem"),
        "tokens must not go to localStorage"
    );
    assert!(!js.contains("eval("), "no eval");
    assert!(!js.contains("innerHTML"), "text goes in as text");
}
