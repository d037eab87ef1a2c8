//! The web page, embedded into the binary: no files to install, no npm step.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// Only our own files may run or load: even if some text slipped past the page's escaping,
/// the browser would refuse inline scripts and outside images.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> impl IntoResponse + Clone {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `/` and the page's assets.
pub fn router() -> Router {
    const JS: &str = "text/javascript; charset=utf-8";
    let html = file(
        "text/html; charset=utf-8",
        include_str!("../../../web/index.html"),
    );
    let css = file(
        "text/css; charset=utf-8",
        include_str!("../../../web/style.css"),
    );
    let scripts = [
        (
            "/markdown.js",
            file(JS, include_str!("../../../web/markdown.js")),
        ),
        (
            "/conversation.js",
            file(JS, include_str!("../../../web/conversation.js")),
        ),
        (
            "/catalog.js",
            file(JS, include_str!("../../../web/catalog.js")),
        ),
        (
            "/exclusions.js",
            file(JS, include_str!("../../../web/exclusions.js")),
        ),
        (
            "/leaderboard.js",
            file(JS, include_str!("../../../web/leaderboard.js")),
        ),
        ("/app.js", file(JS, include_str!("../../../web/app.js"))),
    ];
    let router = Router::new()
        .route("/", get(move || async move { html }))
        .route("/style.css", get(move || async move { css }));
    scripts.into_iter().fold(router, |r, (path, body)| {
        r.route(path, get(move || async move { body }))
    })
}
