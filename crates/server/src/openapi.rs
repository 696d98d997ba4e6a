//! The OpenAPI 3.1 document, kept beside the code as `openapi.json` and checked by a test to
//! list exactly the routes the router serves.

use axum::http::header;
use axum::response::IntoResponse;

/// The document's text.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub(crate) async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
