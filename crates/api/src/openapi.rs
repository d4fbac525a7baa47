//! The OpenAPI 3.1 description at `GET /openapi.json` and the page that renders it at `/docs`.
//!
//! Every route is registered with `utoipa_axum::routes!`, which reads the handler's own
//! `#[utoipa::path]` annotation: registering a route and documenting it are one act. The
//! problem+json error responses are shared components (`BadRequest`, `Unauthorized`, ...).
//!
//! `/docs` is Redoc's standalone bundle, vendored from the npm package `redoc` into
//! `crates/api/assets/redoc/` (MIT, licence files beside it) and compiled into the binary, so
//! neither the build nor the page fetches anything from the network.

use crate::error::{FieldError, Problem};
use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::LazyLock;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi as Document, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

/// The security scheme name every authenticated operation refers to.
pub(crate) const BEARER: &str = "bearer";
/// The security scheme of `/metrics` when `http.metrics_token` is set.
const METRICS_TOKEN: &str = "metrics_token";

/// Redoc's standalone bundle, vendored from npm (`redoc@2.5.4`, `bundles/redoc.standalone.js`).
const REDOC_JS: &[u8] = include_bytes!("../assets/redoc/redoc.standalone.js");

/// The `/docs` page; `{{VERSION}}` becomes [`REDOC_JS`]'s fingerprint so caches never serve a
/// stale bundle after it is refreshed.
const DOCS_HTML: &str = include_str!("../assets/docs.html");

/// The document's skeleton: info, servers, tags and the shared components. Paths come from
/// the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald API",
        description = "Herald's HTTP API: accounts, reading, devices and alerts, the newsroom. \
            Errors are `application/problem+json` (RFC 9457); lists use keyset pagination \
            (`limit`, opaque `cursor`, `next_cursor`); times are RFC 3339 UTC."
    ),
    servers((url = "/", description = "this server")),
    components(
        schemas(Problem, FieldError),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            TooManyRequests,
            Unavailable
        )
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "accounts", description = "Sign-up, sign-in, tokens, profile and sessions"),
        (name = "reading", description = "Topics, publishers, articles, stories and search"),
        (name = "comments", description = "Readers' comments on articles"),
        (name = "devices", description = "Devices, followed topics, alert preferences and the alert inbox"),
        (name = "newsroom", description = "Editors: breaking alerts and publishers' feeds"),
        (name = "operations", description = "Probes, metrics and this documentation"),
        (name = "websub", description = "The WebSub callback hubs verify subscriptions at and deliver feeds to")
    )
)]
pub(crate) struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/v1/auth/*`: `Authorization: Bearer <token>`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            METRICS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`/metrics` only, when `http.metrics_token` is set: `Authorization: Bearer <that token>`",
                    ))
                    .build(),
            ),
        );
    }
}

fn problem(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
            .build(),
    )
}

/// Declares the shared problem+json responses. Each is only a name for annotations
/// (`(status = 401, response = Unauthorized)`), so it is an enum without values.
macro_rules! problem_responses {
    ($($name:ident => $description:literal $(, $header:literal: $kind:ident = $header_description:literal)?;)*) => {
        $(
            #[doc = $description]
            pub(crate) enum $name {}

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<ApiResponse>) {
                    let response = problem($description);
                    $(
                        let response = response.header(
                            $header,
                            HeaderBuilder::new()
                                .schema(ObjectBuilder::new().schema_type(utoipa::openapi::Type::$kind))
                                .description(Some($header_description))
                                .build(),
                        );
                    )?
                    (stringify!($name), RefOr::T(response.build()))
                }
            }
        )*
    };
}

problem_responses! {
    BadRequest => "Malformed: the body is not valid JSON, or a parameter (such as a cursor) is not one this API gave out.";
    Unauthorized => "No bearer token, or one that is invalid, expired or of an ended session.",
        "WWW-Authenticate": String = "`Bearer`";
    Forbidden => "Authenticated, but not allowed (for example: needs the editor role).";
    NotFound => "Nothing there.";
    Conflict => "Conflicts with what exists.";
    PayloadTooLarge => "The body is larger than the limit.";
    UnsupportedMediaType => "The body is not sent as `application/json`.";
    ValidationFailed => "Read, but its values are not acceptable; `errors` names every field.";
    TooManyRequests => "Throttled; retry after `Retry-After` seconds.",
        "Retry-After": Integer = "Seconds until a retry can succeed";
    Unavailable => "A dependency is down or the request took too long.";
}

/// The serialized document, shared by every request for it.
#[derive(Clone)]
pub(crate) struct Spec(Bytes);

impl Spec {
    /// Fills in what the routers do not know and serializes `document`.
    pub(crate) fn new(mut document: Document) -> Self {
        document.info.title = "Herald API".into();
        document.info.version = env!("CARGO_PKG_VERSION").into();
        // Serializing a document of plain data cannot fail; an empty body would show if it did.
        Self(serde_json::to_vec(&document).unwrap_or_default().into())
    }
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json(Extension(spec): Extension<Spec>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        spec.0,
    )
        .into_response()
}

static REDOC_FINGERPRINT: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = DefaultHasher::new();
    REDOC_JS.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
});

/// Human-readable API documentation: this document rendered by Redoc, with no outside requests.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String))
)]
pub(crate) async fn docs() -> Response {
    static HTML: LazyLock<String> =
        LazyLock::new(|| DOCS_HTML.replace("{{VERSION}}", &REDOC_FINGERPRINT));
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DOCS_CSP),
            ),
        ],
        Html(HTML.as_str()),
    )
        .into_response()
}

/// The page may load from this server only; Redoc's styles are inline and its search runs
/// in a worker made from a blob. (Redoc's "powered by" logo points at its CDN: this blocks
/// it, and Redoc hides the image when it fails to load.)
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The vendored Redoc bundle `/docs` runs (MIT licence; see `crates/api/assets/redoc/`).
#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    tag = "operations",
    responses((status = 200, description = "Redoc's standalone JavaScript bundle", content_type = "text/javascript", body = String))
)]
pub(crate) async fn redoc_js() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            // The page asks for it with its fingerprint, so a year is safe.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        REDOC_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_shared_problems() {
        let doc = ApiDoc::openapi();
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            json["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let problem = &json["components"]["responses"]["ValidationFailed"]["content"]["application/problem+json"]
            ["schema"]["$ref"];
        assert_eq!(problem, "#/components/schemas/Problem");
        assert!(json["components"]["schemas"]["Problem"]["properties"]["type"].is_object());
    }

    #[test]
    fn the_docs_page_asks_for_the_fingerprinted_bundle() {
        assert!(DOCS_HTML.contains("docs/redoc.standalone.js?v={{VERSION}}"));
        assert_eq!(REDOC_FINGERPRINT.len(), 16);
    }
}
