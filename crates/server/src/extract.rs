//! Extractors that make malformed input use the API's error shape, and the authenticating
//! extractor that yields a typed principal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use strongroom_core::{CoreError, Principal};

use crate::error::{redact_values, ApiError};
use crate::state::AppState;

/// A JSON body; malformed, oversize or mistyped bodies become [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(rejection) => Err(ApiError::BadJson(redact_values(&rejection.body_text()))),
        }
    }
}

/// Query parameters; unknown or mistyped ones become [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::BadParameter(redact_values(&e.body_text())))
    }
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e: PathRejection| ApiError::BadParameter(redact_values(&e.body_text())))
    }
}

/// The caller, authenticated by `Authorization: Bearer <token>`.
pub struct Authenticated(pub Principal);

/// The client's address (loopback when served in-process without connection info).
pub(crate) fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts);
        state.guards.check_lockout(ip)?;
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| zeroize::Zeroizing::new(v.trim().to_string()));
        let Some(presented) = presented else {
            return Err(ApiError::Core(CoreError::Unauthenticated(
                "send an API token as 'Authorization: Bearer <token>'",
            )));
        };
        match state.run(move |vault| vault.authenticate(&presented)).await {
            Ok(principal) => {
                state.guards.check_rate(&principal)?;
                Ok(Authenticated(principal))
            }
            Err(ApiError::Core(CoreError::Unauthenticated(msg))) => {
                state.metrics.auth_failure();
                state.vault.record_audit("", "auth", "", "denied");
                let policy = state.guards.policy();
                let client = ip.to_string();
                let locked = state
                    .run(move |v| {
                        let until = v.record_auth_failure(&client, policy)?;
                        Ok(until.map(|u| v.millis_until(u)))
                    })
                    .await;
                match locked {
                    Ok(Some(remaining_ms)) => state.guards.lock(ip, remaining_ms),
                    Ok(None) => {}
                    Err(err) => {
                        tracing::warn!(error = ?err, "could not count an authentication failure")
                    }
                }
                Err(ApiError::Core(CoreError::Unauthenticated(msg)))
            }
            Err(other) => Err(other),
        }
    }
}
