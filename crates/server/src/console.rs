//! The admin console and the API reference: static files compiled into the binary, served at
//! `/ui` and `/docs`.
//!
//! The console is a small front end of plain JavaScript modules (no framework, no build step:
//! the files in `crates/server/console/` are what the browser runs) that calls the public API
//! with the token the operator typed, kept in `sessionStorage`. It holds no privilege of its
//! own: every page asks the API, so authorization and audit stay where every other client meets
//! them. The responses carry a strict Content-Security-Policy (scripts and styles from this
//! origin only, no inline code, no forms that submit anywhere, no framing) and ask browsers not
//! to sniff types or send referrers; no asset refers to another origin.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

/// The policy every console and reference response carries.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
     form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// One file of the console.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../console/", $path)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every file served under `/ui/` (and `docs.html` at `/docs`).
pub const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("docs.html", HTML),
    asset!("console.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("docs.js", JS),
    asset!("pages/overview.js", JS),
    asset!("pages/users.js", JS),
    asset!("pages/oauth.js", JS),
    asset!("pages/keys.js", JS),
    asset!("pages/tokens.js", JS),
    asset!("pages/audit.js", JS),
    asset!("pages/webhooks.js", JS),
];

/// The console's routes (merged before the API's fallback).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { serve("index.html") }))
        .route("/ui/", get(|| async { serve("index.html") }))
        .route("/ui/{*file}", get(file))
        .route("/docs", get(|| async { serve("docs.html") }))
}

async fn file(Path(file): Path<String>) -> Response {
    serve(&file)
}

fn serve(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return ApiError::NoRoute.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            // Assets change with the binary: revalidate rather than run an old console.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html() -> impl Iterator<Item = &'static Asset> {
        ASSETS.iter().filter(|a| a.path.ends_with(".html"))
    }

    #[test]
    fn pages_run_no_inline_script_or_style() {
        for page in html() {
            let body = page.body.to_ascii_lowercase();
            for (at, _) in body.match_indices("<script") {
                let tag = &body[at..at + body[at..].find('>').unwrap()];
                assert!(tag.contains(" src="), "{}: inline script {tag}", page.path);
            }
            assert!(!body.contains("<style"), "{}: inline style", page.path);
            assert!(!body.contains(" style="), "{}: style attribute", page.path);
            let handler = body.match_indices(" on").any(|(at, _)| {
                let rest = &body[at + 3..];
                let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
                !word.is_empty() && rest[word.len()..].starts_with('=')
            });
            assert!(!handler, "{}: inline event handler", page.path);
        }
    }

    #[test]
    fn no_asset_refers_to_another_origin() {
        for asset in ASSETS {
            for scheme in ["http://", "https://", "//cdn", "ws://"] {
                assert!(
                    !asset.body.contains(scheme),
                    "{} mentions {scheme}",
                    asset.path
                );
            }
        }
    }

    #[test]
    fn every_referenced_asset_is_served() {
        for asset in ASSETS {
            for quote in ['"', '\''] {
                for piece in asset.body.split(quote) {
                    let Some(path) = piece.strip_prefix("/ui/") else {
                        continue;
                    };
                    if path.ends_with(".js") || path.ends_with(".css") {
                        assert!(
                            ASSETS.iter().any(|a| a.path == path),
                            "{} refers to /ui/{path}, which is not served",
                            asset.path
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn modules_import_only_served_modules() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let dir = asset.path.rsplit_once('/').map_or("", |(d, _)| d);
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.split(['"', '\'']).nth(1).unwrap();
                let mut parts: Vec<&str> = if dir.is_empty() {
                    Vec::new()
                } else {
                    dir.split('/').collect()
                };
                for piece in target.split('/') {
                    match piece {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let resolved = parts.join("/");
                assert!(
                    ASSETS.iter().any(|a| a.path == resolved),
                    "{} imports {target} ({resolved}), which is not served",
                    asset.path
                );
            }
        }
    }
}
