//! Extractors that make malformed input use the API's error shape, and the authenticating
//! extractor that yields a typed principal authorized for the route's operation.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use strongroom_core::{CoreError, Op, Principal};

use crate::error::{redact_query, redact_values, ApiError};
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
            .map_err(|e: QueryRejection| ApiError::BadParameter(redact_query(&e.body_text())))
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

/// The caller, authenticated by `Authorization: Bearer <token>` and authorized for the
/// route's operation (attached to the route by the route table) in the route's namespace —
/// before any body or query parameter is read. A denial is audited and counted by the vault.
pub struct Authenticated(pub Principal);

/// The client's address: the peer, or — when the peer is a trusted proxy — the address the
/// proxy reports (`Forwarded: for=`, else `X-Forwarded-For`), read from the right and skipping
/// trusted proxies, so a client cannot choose its own address by sending the header.
pub(crate) fn client_ip(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    crate::proxies::client_address(peer, &parts.headers, trusted)
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let op = parts.extensions.get::<Op>().copied().ok_or_else(|| {
            ApiError::Core(CoreError::Internal(
                "this route names no operation; the route table is wrong".into(),
            ))
        })?;
        let namespace = match RawPathParams::from_request_parts(parts, state).await {
            Ok(params) => params
                .iter()
                .find(|(name, _)| *name == "namespace")
                .map(|(_, value)| value.to_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let client = client_ip(parts, &state.settings.trusted_proxies).to_string();
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
        // From the token cache on this thread when it can (one blocking-pool hop per request
        // instead of two); anything else — a miss, a failure to count — on the blocking pool.
        let cached = state
            .node
            .vault()
            .ok()
            .and_then(|vault| vault.authenticate_cached(&presented));
        let authenticated = match cached {
            Some(who) => Ok(who),
            None => {
                state
                    .run(move |vault| vault.authenticate(&presented, &client))
                    .await
            }
        };
        let who = match authenticated {
            Ok(who) => who,
            Err(err) => {
                if matches!(
                    err,
                    ApiError::Core(CoreError::Unauthenticated(_) | CoreError::LockedOut { .. })
                ) {
                    state.metrics.auth_failure();
                }
                return Err(err);
            }
        };
        state.rate_limits.check(&who)?;
        if !who.may(op, &namespace) {
            let denied = who.clone();
            state
                .run(move |vault| vault.check_access(&denied, op, &namespace))
                .await?;
        }
        Ok(Authenticated(who))
    }
}
