//! The dashboard: three files compiled into the binary (`ui/`), served at `/` and `/ui/…`. The
//! page builds itself from the public `/v1` API with the caller's token, so it shows what an
//! application with that token may see and nothing else; it loads nothing from anywhere but
//! this server (its Content-Security-Policy says so to the browser).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset =
    Asset { body: include_str!("../ui/index.html"), content_type: "text/html; charset=utf-8" };
const SCRIPT: Asset =
    Asset { body: include_str!("../ui/app.js"), content_type: "text/javascript; charset=utf-8" };
const STYLE: Asset =
    Asset { body: include_str!("../ui/app.css"), content_type: "text/css; charset=utf-8" };

/// What the page may load and from where: this server only; images also from `blob:` (an
/// output fetched with the token, shown inline).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                      img-src 'self' blob:; connect-src 'self'; form-action 'self'; \
                      base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the dashboard's page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

/// `GET /ui/app.js`.
pub(crate) async fn script(headers: HeaderMap) -> Response {
    serve(&SCRIPT, &headers)
}

/// `GET /ui/app.css`.
pub(crate) async fn style(headers: HeaderMap) -> Response {
    serve(&STYLE, &headers)
}

/// Answers with the file, or `304` when the browser's copy is this one (`ETag`: a hash of the
/// bytes; the browser asks again each time, so a new binary's files are seen at once).
fn serve(asset: &Asset, headers: &HeaderMap) -> Response {
    let cid = theory_protocol::Cid::of(asset.body.as_bytes()).to_string();
    let tag = format!("\"{}\"", cid.get(3..19).unwrap_or(&cid));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == tag));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
    let set = response.headers_mut();
    set.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    set.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    set.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    set.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    set.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(&tag) {
        set.insert(header::ETAG, value);
    }
    response
}
