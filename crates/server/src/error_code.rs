//! Every error code the API answers with, one per meaning, each with its HTTP status. A test
//! checks that this set is exactly the one the OpenAPI document lists, so a client can rely on
//! the document for every code it may see.

use axum::http::StatusCode;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    /// An input broke a documented rule (the message names the field and the rule).
    InvalidInput,
    /// The body is not the JSON this endpoint takes.
    InvalidJson,
    /// A path segment, query parameter or header has the wrong shape.
    InvalidParameter,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The request body ended early or could not be read.
    BodyReadFailed,
    /// The request (or an upload's body) took too long.
    RequestTimeout,
    Unauthenticated,
    Forbidden,
    /// A valid token suspended after repeated authorization denials.
    TokenSuspended,
    /// Too many failed authentications for this client address or token id.
    LockedOut,
    /// This token's own request rate limit.
    RateLimited,
    NotFound,
    NoRoute,
    VersionDeleted,
    VersionDestroyed,
    AlreadyExists,
    /// A check-and-set precondition failed.
    VersionConflict,
    UniqueViolation,
    /// The user was erased and the purge is still running.
    ErasureInProgress,
    /// A setting that cannot change once set.
    ImmutableSetting,
    LastOperatorToken,
    KeysStillInUse,
    NeedsReauthorization,
    RefreshFailed,
    RevocationFailed,
    VerificationFailed,
    FileTooLarge,
    QuotaExceeded,
    UnsupportedContentType,
    /// A range outside the file.
    RangeNotSatisfiable,
    /// A `Range` header this server does not take (malformed, or several ranges): 400, where
    /// a range outside the file is 416.
    InvalidRange,
    InvalidLink,
    LinkExpired,
    LinkUsed,
    /// Stored data failed authentication: altered, moved, or damaged.
    IntegrityError,
    /// Data under a retired key version.
    KeyRetired,
    FilesNotConfigured,
    ObjectStorageUnavailable,
    /// The database is unreachable or busy.
    Unavailable,
    /// The audit log cannot store entries; audited operations are refused.
    AuditUnavailable,
    /// The node holds no key until an operator unseals it.
    Sealed,
    /// An unseal's key material does not open this store.
    WrongRootKey,
    /// An unseal of a node that is not sealed.
    NotSealed,
    /// KMS, which wraps the root key, is unreachable or busy.
    KmsUnavailable,
    /// KMS refused to unwrap (or wrap) the root key.
    KmsRefused,
    /// A disk is full.
    InsufficientStorage,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 48] = {
        use ErrorCode::*;
        [
            InvalidInput,
            InvalidJson,
            InvalidParameter,
            PayloadTooLarge,
            UnsupportedMediaType,
            BodyReadFailed,
            RequestTimeout,
            Unauthenticated,
            Forbidden,
            TokenSuspended,
            LockedOut,
            RateLimited,
            NotFound,
            NoRoute,
            VersionDeleted,
            VersionDestroyed,
            AlreadyExists,
            VersionConflict,
            UniqueViolation,
            ErasureInProgress,
            ImmutableSetting,
            LastOperatorToken,
            KeysStillInUse,
            NeedsReauthorization,
            RefreshFailed,
            RevocationFailed,
            VerificationFailed,
            FileTooLarge,
            QuotaExceeded,
            UnsupportedContentType,
            RangeNotSatisfiable,
            InvalidRange,
            InvalidLink,
            LinkExpired,
            LinkUsed,
            IntegrityError,
            KeyRetired,
            FilesNotConfigured,
            ObjectStorageUnavailable,
            Unavailable,
            AuditUnavailable,
            Sealed,
            WrongRootKey,
            NotSealed,
            KmsUnavailable,
            KmsRefused,
            InsufficientStorage,
            Internal,
        ]
    };

    /// The code as clients see it.
    pub const fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidInput => "invalid_input",
            InvalidJson => "invalid_json",
            InvalidParameter => "invalid_parameter",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            BodyReadFailed => "body_read_failed",
            RequestTimeout => "request_timeout",
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            TokenSuspended => "token_suspended",
            LockedOut => "locked_out",
            RateLimited => "rate_limited",
            NotFound => "not_found",
            NoRoute => "no_route",
            VersionDeleted => "version_deleted",
            VersionDestroyed => "version_destroyed",
            AlreadyExists => "already_exists",
            VersionConflict => "version_conflict",
            UniqueViolation => "unique_violation",
            ErasureInProgress => "erasure_in_progress",
            ImmutableSetting => "immutable_setting",
            LastOperatorToken => "last_operator_token",
            KeysStillInUse => "keys_still_in_use",
            NeedsReauthorization => "needs_reauthorization",
            RefreshFailed => "refresh_failed",
            RevocationFailed => "revocation_failed",
            VerificationFailed => "verification_failed",
            FileTooLarge => "file_too_large",
            QuotaExceeded => "quota_exceeded",
            UnsupportedContentType => "unsupported_content_type",
            RangeNotSatisfiable => "range_not_satisfiable",
            InvalidRange => "invalid_range",
            InvalidLink => "invalid_link",
            LinkExpired => "link_expired",
            LinkUsed => "link_used",
            IntegrityError => "integrity_error",
            KeyRetired => "key_retired",
            FilesNotConfigured => "files_not_configured",
            ObjectStorageUnavailable => "object_storage_unavailable",
            Unavailable => "unavailable",
            AuditUnavailable => "audit_unavailable",
            Sealed => "sealed",
            WrongRootKey => "wrong_root_key",
            NotSealed => "not_sealed",
            KmsUnavailable => "kms_unavailable",
            KmsRefused => "kms_refused",
            InsufficientStorage => "insufficient_storage",
            Internal => "internal",
        }
    }

    /// The HTTP status this code is answered with.
    pub const fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidInput | InvalidJson | InvalidParameter | BodyReadFailed | InvalidRange
            | WrongRootKey => StatusCode::BAD_REQUEST,
            PayloadTooLarge | FileTooLarge | QuotaExceeded => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType | UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Unauthenticated => StatusCode::UNAUTHORIZED,
            Forbidden | TokenSuspended | InvalidLink => StatusCode::FORBIDDEN,
            LockedOut | RateLimited => StatusCode::TOO_MANY_REQUESTS,
            NotFound | NoRoute | VersionDeleted => StatusCode::NOT_FOUND,
            VersionDestroyed | LinkExpired | LinkUsed => StatusCode::GONE,
            AlreadyExists | VersionConflict | UniqueViolation | ErasureInProgress
            | ImmutableSetting | LastOperatorToken | KeysStillInUse | NeedsReauthorization
            | NotSealed => StatusCode::CONFLICT,
            RefreshFailed | RevocationFailed | VerificationFailed | KmsRefused => {
                StatusCode::BAD_GATEWAY
            }
            RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            IntegrityError | KeyRetired | Internal => StatusCode::INTERNAL_SERVER_ERROR,
            FilesNotConfigured
            | ObjectStorageUnavailable
            | Unavailable
            | AuditUnavailable
            | Sealed
            | KmsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        }
    }

    /// Whether a client may retry the same request later (Retry-After is sent).
    pub const fn retryable(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            Unavailable
                | ObjectStorageUnavailable
                | AuditUnavailable
                | InsufficientStorage
                | RefreshFailed
                | ErasureInProgress
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn codes_are_distinct_and_statuses_are_errors() {
        let names: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let status = code.status().as_u16();
            assert!((400..600).contains(&status), "{code:?}");
        }
    }
}
