#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/openapi.json` against the running app: every documented route is served by a real
//! handler, every route of SPEC §3 is documented, nothing undocumented is registered, and
//! `/docs` renders the document with the vendored Redoc.
//!
//! Completeness in the other direction (every registered route is documented) holds because
//! the api crate registers routes only through `utoipa_axum::routes!`, which takes the path
//! and method from the handler's own `#[utoipa::path]` annotation: a handler without one does
//! not compile there. `routes_are_registered_only_through_routes_macro` keeps it that way by
//! refusing any other way of adding a route in the api crate's sources.

use herald_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Every route of SPEC §3, copied from its tables (`{google,apple}` is the path parameter
/// `{provider}`; `GET/POST` rows are split into one line per method).
const SPEC_ROUTES: &[(&str, &str)] = &[
    // Accounts and sessions
    ("POST", "/v1/auth/signup"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/anonymous"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/oidc/{provider}"),
    ("POST", "/v1/me/link"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("GET", "/v1/me/sessions"),
    ("DELETE", "/v1/me/sessions/{id}"),
    // Reading
    ("GET", "/v1/topics"),
    ("GET", "/v1/sources"),
    ("GET", "/v1/articles"),
    ("GET", "/v1/articles/{id}"),
    ("GET", "/v1/stories"),
    ("GET", "/v1/stories/{id}"),
    ("GET", "/v1/me/feed"),
    ("GET", "/v1/articles/{id}/comments"),
    ("POST", "/v1/articles/{id}/comments"),
    ("DELETE", "/v1/comments/{id}"),
    // Devices, subscriptions, preferences
    ("GET", "/v1/push/vapid-public-key"),
    ("POST", "/v1/devices"),
    ("GET", "/v1/devices"),
    ("DELETE", "/v1/devices/{id}"),
    ("GET", "/v1/me/subscriptions"),
    ("PUT", "/v1/me/subscriptions"),
    ("POST", "/v1/me/subscriptions"),
    ("DELETE", "/v1/me/subscriptions/{slug}"),
    ("GET", "/v1/me/preferences"),
    ("PUT", "/v1/me/preferences"),
    ("GET", "/v1/me/alerts"),
    ("POST", "/v1/alerts/{id}/opened"),
    // Newsroom
    ("POST", "/v1/admin/alerts"),
    ("GET", "/v1/admin/alerts/{id}"),
    ("DELETE", "/v1/admin/alerts/{id}"),
    ("GET", "/v1/admin/sources"),
    ("POST", "/v1/admin/sources"),
    ("PATCH", "/v1/admin/sources/{id}"),
    ("DELETE", "/v1/admin/sources/{id}"),
    // "`GET /openapi.json` describes all of the above; `/docs` renders it."
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
];

/// Documented routes that SPEC §3 does not list, each with its reason.
const EXTRA_ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),                  // liveness probe (SPEC §2)
    ("GET", "/readyz"),                   // readiness probe (SPEC §2)
    ("GET", "/metrics"),                  // Prometheus scrape
    ("GET", "/.well-known/jwks.json"),    // keys that verify access tokens
    ("GET", "/docs/redoc.standalone.js"), // the script `/docs` runs
    ("POST", "/v1/me/password"),          // password change for full accounts
    ("GET", "/v1/admin/sources/{id}"),    // one source with its health
    // The newsroom console (issue #17):
    ("POST", "/v1/admin/alerts/estimate"), // audience estimate before sending
    ("GET", "/v1/admin/alerts"),           // alert history
    ("GET", "/v1/admin/alerts/{id}/opens"), // opens over time
    ("PATCH", "/v1/admin/alerts/{id}"),    // update a sent alert in place
    ("POST", "/v1/admin/alerts/test"),     // a test to the editor's own devices
    ("GET", "/v1/admin/alerts/{id}/analytics"), // reach by platform, topic and time
    ("GET", "/v1/admin/stories"),          // stories with breaking marks
    // WebSub (issue #22):
    ("GET", "/websub/{source}/{token}"), // a hub's verification of intent
    ("POST", "/websub/{source}/{token}"), // a hub's content distribution
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// `{anything}` → `{}`, so parameter names do not matter when comparing paths.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// A concrete path for a template: ids become random UUIDs, slugs a topic that exists.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let value = match &rest[start + 1..end] {
            "slug" | "topic" => "world".to_string(),
            "provider" => "google".to_string(),
            _ => uuid::Uuid::new_v4().to_string(),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "not OpenAPI 3.1: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Herald API");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], "/");
    doc
}

/// (method in capitals, path template) → operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()), operation.clone());
            }
        }
    }
    out
}

async fn anonymous_token(app: &TestApp) -> String {
    let body: Value = app
        .post_json("/v1/auth/anonymous", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// The router's fallback 404 is told apart from a handler's by its fixed `detail`
/// (`NO_SUCH_ROUTE` in `crates/api/src/error.rs`); a 405 comes only from the router.
fn is_fallback(status: StatusCode, body: &str) -> bool {
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return true;
    }
    status == StatusCode::NOT_FOUND
        && serde_json::from_str::<Value>(body)
            .is_ok_and(|problem| problem["detail"] == "no such route; see /openapi.json")
}

#[tokio::test]
async fn every_documented_route_reaches_a_handler_that_answers_as_documented() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let operations = operations(&doc);
    assert!(operations.len() >= SPEC_ROUTES.len());

    // The check below can tell: the fallback answers unknown paths and methods recognisably.
    let response = app.get("/v1/no-such-thing").await;
    let status = response.status();
    assert!(is_fallback(status, &response.text().await.unwrap()));
    let response = app.client.put(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let mut failures = Vec::new();
    for ((method, path), operation) in &operations {
        let documented: BTreeSet<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        // Once as nobody, once as a signed-in reader (a fresh one each time, since some
        // operations end the session or delete the account).
        for token in [None, Some(anonymous_token(&app).await)] {
            let url = app.url(&concrete(path));
            let mut request = app
                .client
                .request(Method::from_bytes(method.as_bytes()).unwrap(), url);
            if let Some(token) = &token {
                request = request.bearer_auth(token);
            }
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                request = request.json(&json!({}));
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            let who = if token.is_some() { "reader" } else { "nobody" };
            if is_fallback(status, &body) {
                failures.push(format!(
                    "{method} {path} ({who}): answered by the router's fallback ({status})"
                ));
            } else if !documented.contains(status.as_str()) && !documented.contains("default") {
                failures.push(format!(
                    "{method} {path} ({who}): answered {status}, documented {documented:?}: {body}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn spec_routes_are_documented_and_nothing_else_is() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_keys()
        .map(|(method, path)| (method, normalize(&path)))
        .collect();
    let spec: BTreeSet<(String, String)> = SPEC_ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), normalize(path)))
        .collect();
    let extra: BTreeSet<(String, String)> = EXTRA_ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), normalize(path)))
        .collect();
    let missing: Vec<_> = spec.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "SPEC §3 routes not documented: {missing:?}"
    );
    let unexpected: Vec<_> = documented
        .iter()
        .filter(|route| !spec.contains(*route) && !extra.contains(*route))
        .collect();
    assert!(
        unexpected.is_empty(),
        "documented routes in neither SPEC §3 nor the extras: {unexpected:?}"
    );
    app.stop().await.unwrap();
}

/// Walks `value` and collects every `$ref`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "$ref" {
                    out.push(inner.as_str().unwrap().to_string());
                } else {
                    refs(inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_operation_is_described_with_its_errors() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut ids = BTreeSet::new();
    let mut failures = Vec::new();
    for ((method, path), operation) in operations(&doc) {
        let name = format!("{method} {path}");
        let id = operation["operationId"].as_str().unwrap_or_default();
        if id.is_empty() || !ids.insert(id.to_string()) {
            failures.push(format!("{name}: missing or repeated operationId `{id}`"));
        }
        if operation["summary"].as_str().unwrap_or_default().is_empty() {
            failures.push(format!("{name}: no summary"));
        }
        if operation["tags"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!("{name}: no tag"));
        }
        let responses = operation["responses"].as_object().unwrap();
        if !responses.keys().any(|status| status.starts_with('2')) {
            failures.push(format!("{name}: no success response"));
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if secured && !responses.contains_key("401") {
            failures.push(format!("{name}: needs a token but does not document 401"));
        }
        if operation.get("requestBody").is_some() {
            for status in ["400", "422"] {
                if !responses.contains_key(status) {
                    failures.push(format!(
                        "{name}: takes a body but does not document {status}"
                    ));
                }
            }
        }
        // Every path parameter of the template is declared, and only those.
        let in_path: BTreeSet<String> = path
            .split('{')
            .skip(1)
            .filter_map(|part| part.split('}').next())
            .map(str::to_string)
            .collect();
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|params| {
                params
                    .iter()
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if in_path != declared {
            failures.push(format!(
                "{name}: path parameters {in_path:?} but declared {declared:?}"
            ));
        }
        // Errors are problem+json.
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let response = match response["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.trim_start_matches("#/components/responses/");
                    doc["components"]["responses"][name].clone()
                }
                None => response.clone(),
            };
            if response["content"]["application/problem+json"].is_null() {
                failures.push(format!("{name}: error {status} is not problem+json"));
            }
        }
    }
    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for reference in all {
        let pointer = reference.trim_start_matches('#');
        if doc.pointer(pointer).is_none() {
            failures.push(format!("dangling $ref {reference}"));
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": doc["components"]["securitySchemes"]["bearer"]["description"]})
    );
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "detail", "errors"] {
        if problem[field].is_null() {
            failures.push(format!("the Problem schema lacks `{field}`"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn docs_render_the_document_with_the_vendored_redoc() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<redoc spec-url="openapi.json">"#),
        "{html}"
    );
    // Relative to `/docs`, as a browser resolves it.
    let script = html
        .split(r#"<script src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a script tag");
    assert!(
        script.starts_with("docs/redoc.standalone.js?v="),
        "{script}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );

    let response = app.get(&format!("/{script}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let cache = response.headers()["cache-control"].to_str().unwrap();
    assert!(cache.contains("max-age=31536000"), "{cache}");
    let js = response.bytes().await.unwrap();
    let vendored = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/api/assets/redoc/redoc.standalone.js"),
    )
    .unwrap();
    assert_eq!(js.len(), vendored.len());
    assert!(js == vendored, "the served bundle is not the vendored one");
    app.stop().await.unwrap();
}

#[test]
fn routes_are_registered_only_through_routes_macro() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/api/src");
    let mut offences = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let plain_router =
                code.contains("Router::new()") && !code.contains("OpenApiRouter::new()");
            let bypass = [
                ".route(",
                ".route_service(",
                ".nest_service(",
                "axum::routing",
                "OpenApiRouter::from(",
            ]
            .iter()
            .any(|needle| code.contains(needle));
            if plain_router || bypass {
                offences.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "routes must be registered with `routes!` so they are documented:\n{}",
        offences.join("\n")
    );
}

/// Every documented route with a path parameter that does not parse answers problem+json,
/// never axum's plain-text rejection, whatever the method, as an editor (so authentication
/// passes and the path is what is wrong).
#[tokio::test]
async fn a_malformed_path_parameter_is_problem_json_on_every_route() {
    let app = TestApp::spawn().await;
    let editor = herald_tests::newsroom::editor(&app).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let mut tried = 0;
    let mut offences = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.contains('{') {
            continue;
        }
        let bad: String = path
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "not-an-id"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_ascii_uppercase().parse::<Method>() else {
                continue;
            };
            let response = app
                .client
                .request(method.clone(), app.url(&bad))
                .bearer_auth(&editor.token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            tried += 1;
            let status = response.status();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if status.is_client_error() && !content_type.starts_with("application/problem+json") {
                offences.push(format!("{method} {bad}: {status} {content_type}"));
            }
            assert!(!status.is_server_error(), "{method} {bad}: {status}");
        }
    }
    assert!(tried >= 10, "only {tried} routes have path parameters");
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
