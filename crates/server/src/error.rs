//! Every failure becomes one JSON shape — `{"error": {"code": "...", "message": "..."}}` —
//! through one exhaustive `match` (no catch-all arm), with a stable code per case. Internal
//! details are logged once here and never sent to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strongroom_core::CoreError;

/// An error as the API reports it.
#[derive(Debug)]
pub enum ApiError {
    /// From the domain.
    Core(CoreError),
    /// The body is not the JSON this endpoint takes.
    BadJson(String),
    /// A path segment or query parameter has the wrong shape.
    BadParameter(String),
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body is not declared as JSON.
    UnsupportedMediaType,
    /// Too many failed authentications from this client, or this token's rate limit.
    TooManyRequests {
        code: &'static str,
        retry_after_secs: u64,
    },
    /// No such route.
    NoRoute,
    /// A `Range` header this server does not take (malformed, or several ranges).
    BadRange(String),
    /// The request body could not be read to its end (the client went away, or bad framing).
    BodyFailed,
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        ApiError::Core(err)
    }
}

impl ApiError {
    /// Status, stable code, and the message the client sees.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::Core(e) => core_parts(e),
            ApiError::BadJson(msg) => (StatusCode::BAD_REQUEST, "invalid_json", msg.clone()),
            ApiError::BadParameter(msg) => {
                (StatusCode::BAD_REQUEST, "invalid_parameter", msg.clone())
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the limit".into(),
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            ApiError::TooManyRequests {
                code,
                retry_after_secs,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                code,
                format!("too many requests; retry in {retry_after_secs} s"),
            ),
            ApiError::BadRange(msg) => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                "invalid_range",
                msg.clone(),
            ),
            ApiError::BodyFailed => (
                StatusCode::BAD_REQUEST,
                "body_read_failed",
                "the request body ended early or could not be read; nothing was stored".into(),
            ),
            ApiError::NoRoute => (
                StatusCode::NOT_FOUND,
                "no_route",
                "no such endpoint; see /v1/openapi.json".into(),
            ),
        }
    }
}

fn core_parts(e: &CoreError) -> (StatusCode, &'static str, String) {
    let msg = e.to_string();
    match e {
        CoreError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_input", msg),
        CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", msg),
        CoreError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists", msg),
        CoreError::Conflict(_) => (StatusCode::CONFLICT, "version_conflict", msg),
        CoreError::UniqueViolation(_) => (StatusCode::CONFLICT, "unique_violation", msg),
        CoreError::NeedsReauthorization(_) => (StatusCode::CONFLICT, "needs_reauthorization", msg),
        CoreError::RefreshFailed(_) => (StatusCode::BAD_GATEWAY, "refresh_failed", msg),
        CoreError::RevocationFailed(_) => (StatusCode::BAD_GATEWAY, "revocation_failed", msg),
        CoreError::VerificationFailed(_) => (StatusCode::BAD_GATEWAY, "verification_failed", msg),
        CoreError::Deleted(_) => (StatusCode::NOT_FOUND, "version_deleted", msg),
        CoreError::Destroyed(_) => (StatusCode::GONE, "version_destroyed", msg),
        CoreError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated", msg),
        CoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", msg),
        CoreError::KeysStillInUse { .. } => (StatusCode::CONFLICT, "keys_still_in_use", msg),
        CoreError::Integrity(_) => (StatusCode::INTERNAL_SERVER_ERROR, "integrity_error", msg),
        CoreError::KeyRetired { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "key_retired", msg),
        CoreError::WrongRootKey => (StatusCode::INTERNAL_SERVER_ERROR, "wrong_root_key", msg),
        CoreError::FileTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large", msg),
        CoreError::QuotaExceeded(_) => (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded", msg),
        CoreError::UnsupportedContentType(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content_type",
            msg,
        ),
        CoreError::RangeNotSatisfiable { .. } => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            msg,
        ),
        CoreError::InvalidLink => (StatusCode::FORBIDDEN, "invalid_link", msg),
        CoreError::LinkExpired => (StatusCode::GONE, "link_expired", msg),
        CoreError::LinkUsed => (StatusCode::GONE, "link_used", msg),
        CoreError::FilesNotConfigured => {
            (StatusCode::SERVICE_UNAVAILABLE, "files_not_configured", msg)
        }
        CoreError::ObjectsUnavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "object_storage_unavailable",
            "file storage is temporarily unavailable; retry shortly".into(),
        ),
        CoreError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage is temporarily unavailable; retry shortly".into(),
        ),
        CoreError::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the server log has details".into(),
        ),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if status.is_server_error() {
            // Logged once, here. Core messages never carry secrets or raw user ids.
            tracing::error!(code, error = ?self, "request failed");
        }
        let mut response = (
            status,
            axum::Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ApiError::Core(CoreError::RangeNotSatisfiable { size }) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            ApiError::Core(CoreError::Unavailable(_))
            | ApiError::Core(CoreError::ObjectsUnavailable(_))
            | ApiError::Core(CoreError::RefreshFailed(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Core(CoreError::Unauthenticated(_)) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Removes quoted values from a serde message ("invalid type: string \"...\"") so a secret
/// sent in the wrong place is never echoed back.
pub(crate) fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            for inner in chars.by_ref() {
                if inner == '"' {
                    break;
                }
            }
            out.push_str("\"…\"");
        } else {
            out.push(c);
        }
    }
    // Numbers and other literals appear as `invalid type: integer `123``.
    out.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 && !is_identifier(part) {
                "…"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// Field and variant names are safe to echo; values (numbers, free text) are not.
fn is_identifier(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_redacted() {
        let msg = redact_values(
            r#"data.access_token: invalid type: string "hunter2", expected u64 at line 1 column 9"#,
        );
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("expected u64"));
        let msg = redact_values(
            "invalid type: integer `123456`, expected a string; unknown field `bogus`",
        );
        assert!(!msg.contains("123456") && msg.contains("`bogus`"), "{msg}");
    }
}
