//! Every failure becomes one JSON shape — `{"error": {"code": "...", "message": "..."}}` —
//! through one exhaustive `match` (no catch-all arm), with a stable code per case. Internal
//! details are logged once here and never sent to the client.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use strongroom_core::CoreError;

pub use crate::error_code::ErrorCode;

/// An error as the API reports it.
#[derive(Debug)]
pub enum ApiError {
    /// From the domain.
    Core(CoreError),
    /// The body is not the JSON this endpoint takes.
    BadJson(String),
    /// A path segment, query parameter or header has the wrong shape.
    BadParameter(String),
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body is not declared as JSON.
    UnsupportedMediaType,
    /// This token's own request rate limit.
    RateLimited { retry_after_secs: u64 },
    /// No such route.
    NoRoute,
    /// A `Range` header this server does not take (malformed, or several ranges).
    BadRange(String),
    /// The request body could not be read to its end (the client went away, or bad framing).
    BodyFailed,
    /// An upload's body sent nothing for this long.
    UploadStalled { idle_secs: u64 },
    /// The request took longer than the request timeout.
    TimedOut { secs: u64 },
    /// A handler panicked (a bug); this request fails, the node keeps serving.
    Panicked,
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        ApiError::Core(err)
    }
}

impl ApiError {
    /// The stable code and the message the client sees.
    pub fn code_and_message(&self) -> (ErrorCode, String) {
        match self {
            ApiError::Core(e) => core_parts(e),
            ApiError::BadJson(msg) => (ErrorCode::InvalidJson, msg.clone()),
            ApiError::BadParameter(msg) => (ErrorCode::InvalidParameter, msg.clone()),
            ApiError::PayloadTooLarge => (
                ErrorCode::PayloadTooLarge,
                "body: larger than this server's limit for this endpoint".into(),
            ),
            ApiError::UnsupportedMediaType => (
                ErrorCode::UnsupportedMediaType,
                "body: send it as JSON with Content-Type: application/json".into(),
            ),
            ApiError::RateLimited { retry_after_secs } => (
                ErrorCode::RateLimited,
                format!("this token's rate limit is reached; retry in {retry_after_secs} s"),
            ),
            ApiError::BadRange(msg) => (ErrorCode::InvalidRange, msg.clone()),
            ApiError::BodyFailed => (
                ErrorCode::BodyReadFailed,
                "body: it ended early or could not be read; nothing was stored".into(),
            ),
            ApiError::UploadStalled { idle_secs } => (
                ErrorCode::RequestTimeout,
                format!("body: no bytes arrived for {idle_secs} s; the upload was abandoned"),
            ),
            ApiError::TimedOut { secs } => (
                ErrorCode::RequestTimeout,
                format!("the request took longer than {secs} s and was stopped"),
            ),
            ApiError::NoRoute => (
                ErrorCode::NoRoute,
                "no such endpoint; see /v1/openapi.json".into(),
            ),
            ApiError::Panicked => (
                ErrorCode::Internal,
                "internal error; the server log has details".into(),
            ),
        }
    }

    /// Seconds a client should wait before retrying, when that makes sense.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs }
            | ApiError::Core(CoreError::LockedOut { retry_after_secs })
            | ApiError::Core(CoreError::TokenSuspended { retry_after_secs })
            | ApiError::Core(CoreError::RefreshBackingOff {
                retry_after_secs, ..
            }) => Some(*retry_after_secs),
            other => other.code_and_message().0.retryable().then_some(1),
        }
    }
}

/// Every domain error in one exhaustive match (no catch-all: a new variant must be mapped).
fn core_parts(e: &CoreError) -> (ErrorCode, String) {
    let msg = e.to_string();
    let code = match e {
        CoreError::Invalid { .. } => ErrorCode::InvalidInput,
        CoreError::NotFound(_) => ErrorCode::NotFound,
        CoreError::AlreadyExists(_) => ErrorCode::AlreadyExists,
        CoreError::Conflict(_) => ErrorCode::VersionConflict,
        CoreError::ErasureInProgress => ErrorCode::ErasureInProgress,
        CoreError::Immutable { .. } => ErrorCode::ImmutableSetting,
        CoreError::LastOperatorToken => ErrorCode::LastOperatorToken,
        CoreError::UniqueViolation(_) => ErrorCode::UniqueViolation,
        CoreError::NeedsReauthorization(_) => ErrorCode::NeedsReauthorization,
        CoreError::RefreshFailed(_) | CoreError::RefreshBackingOff { .. } => {
            ErrorCode::RefreshFailed
        }
        CoreError::RevocationFailed(_) => ErrorCode::RevocationFailed,
        // Recorded on deliveries by the delivery job; no API call answers with it.
        CoreError::WebhookFailed(_) => ErrorCode::Internal,
        CoreError::VerificationFailed(_) => ErrorCode::VerificationFailed,
        CoreError::Deleted(_) => ErrorCode::VersionDeleted,
        CoreError::Destroyed(_) => ErrorCode::VersionDestroyed,
        CoreError::Unauthenticated(_) => ErrorCode::Unauthenticated,
        CoreError::Forbidden(_) => ErrorCode::Forbidden,
        CoreError::LockedOut { .. } => ErrorCode::LockedOut,
        CoreError::TokenSuspended { .. } => ErrorCode::TokenSuspended,
        CoreError::KeysStillInUse { .. } => ErrorCode::KeysStillInUse,
        CoreError::Integrity(_) | CoreError::AuditLogDamaged(_) => ErrorCode::IntegrityError,
        CoreError::KeyRetired { .. } => ErrorCode::KeyRetired,
        CoreError::FileTooLarge { .. } => ErrorCode::FileTooLarge,
        CoreError::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
        CoreError::UnsupportedContentType(_) => ErrorCode::UnsupportedContentType,
        CoreError::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
        CoreError::InvalidLink => ErrorCode::InvalidLink,
        CoreError::LinkExpired => ErrorCode::LinkExpired,
        CoreError::LinkUsed => ErrorCode::LinkUsed,
        CoreError::FilesNotConfigured => ErrorCode::FilesNotConfigured,
        CoreError::InsufficientStorage(_) => ErrorCode::InsufficientStorage,
        CoreError::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
        CoreError::ObjectsUnavailable(_) => {
            return (
                ErrorCode::ObjectStorageUnavailable,
                "file storage is temporarily unavailable; retry shortly".into(),
            )
        }
        CoreError::Unavailable(_) => {
            return (
                ErrorCode::Unavailable,
                "storage is temporarily unavailable; retry shortly".into(),
            )
        }
        CoreError::Sealed => ErrorCode::Sealed,
        CoreError::NotSealed => ErrorCode::NotSealed,
        // Expected only from an unseal: the key material does not open this store.
        CoreError::WrongRootKey => {
            return (
                ErrorCode::WrongRootKey,
                "the key material does not unseal this store (the key check failed)".into(),
            )
        }
        CoreError::KeyService {
            transient: true, ..
        } => ErrorCode::KmsUnavailable,
        CoreError::KeyService { .. } => ErrorCode::KmsRefused,
        CoreError::Internal(_) => {
            return (
                ErrorCode::Internal,
                "internal error; the server log has details".into(),
            )
        }
    };
    (code, msg)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, message) = self.code_and_message();
        let status = code.status();
        if status.is_server_error() {
            // Logged once, here. Core messages never carry secrets or raw user ids.
            tracing::error!(code = code.as_str(), error = ?self, "request failed");
        }
        let mut response = (
            status,
            axum::Json(json!({"error": {"code": code.as_str(), "message": message}})),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        match &self {
            ApiError::Core(CoreError::RangeNotSatisfiable { size }) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
            }
            ApiError::Core(CoreError::Unauthenticated(_)) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// A serde or extractor message made safe to return: never a value, key or variant the client
/// sent (a secret pasted into the wrong field must not come back). What stays: the path to the
/// field (our field names), the rule (`invalid type: string, expected u64`, `missing field
/// `days``, the variants we expect) and the position.
pub(crate) fn redact_values(message: &str) -> String {
    let message = message
        .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ")
        .trim_start_matches("Failed to deserialize query string: ")
        .trim_start_matches("Failed to deserialize query string. Error: ");
    let message = drop_named(message, "unknown field `", "unknown field");
    let message = drop_named(&message, "unknown variant `", "unknown value");
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
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

/// [`redact_values`] for query strings, whose error path is the parameter's own name: for an
/// unknown parameter that name is the client's, so the path goes too.
pub(crate) fn redact_query(message: &str) -> String {
    let redacted = redact_values(message);
    match redacted.find("unknown field") {
        Some(at) => format!(
            "unknown query parameter{}",
            &redacted[at + "unknown field".len()..]
        ),
        None => redacted,
    }
}

/// Replaces every "`marker`<what the client sent>`" with `replacement` (the name is theirs).
fn drop_named(message: &str, marker: &str, replacement: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at]);
        out.push_str(replacement);
        let after = &rest[at + marker.len()..];
        rest = match after.find('`') {
            Some(end) => &after[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
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
        assert!(!msg.contains("123456") && !msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn names_the_client_sent_are_not_echoed_but_ours_are() {
        let msg = redact_values(
            "data.type: unknown variant `sk_live_secret`, expected `oauth2` or `secret` at line 1 column 30",
        );
        assert_eq!(
            msg,
            "data.type: unknown value, expected `oauth2` or `secret` at line 1 column 30"
        );
        let msg = redact_values("unknown field `hunter2`, expected one of `data`, `options`");
        assert_eq!(msg, "unknown field, expected one of `data`, `options`");
        let msg = redact_values("missing field `days` at line 1 column 2");
        assert_eq!(msg, "missing field `days` at line 1 column 2");
        let msg = redact_query("sk_live_abc: unknown field `sk_live_abc`, expected `version`");
        assert_eq!(msg, "unknown query parameter, expected `version`");
    }
}
