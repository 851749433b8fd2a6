//! The operators' console (运行监控台), served at `/`: the front end built
//! from `web/` by Vite into `web/dist`, embedded in the binary (release
//! builds; debug builds read the folder from disk so that a front-end
//! rebuild needs no recompile). Owns nothing else: everything the console
//! shows comes from the API.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "../../web/dist/"]
struct Assets;

/// Everything the page may load: only this server (no tiles, fonts or
/// scripts from the internet).
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
    connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Serves a console file, or `index.html` for any other non-API path (the
/// page routes itself). `None` when the console was not built.
pub fn serve(uri: &Uri) -> Option<Response> {
    let path = uri.path().trim_start_matches('/');
    let (file, name) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(f) => (f, path),
        None => (Assets::get("index.html")?, "index.html"),
    };
    let mime = file.metadata.mimetype().to_string();
    // Vite names assets by content hash: they never change under one name.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut r = (StatusCode::OK, file.data.into_owned()).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(CONTENT_TYPE, v);
    }
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Some(r)
}
