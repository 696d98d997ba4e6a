//! Per-request limits that answer in the API's error shape: the request timeout (408
//! `request_timeout`, where tower's timeout answers with an empty body) and panics (a handler
//! that panics fails its own request with 500 `internal`; the node keeps serving).

use std::any::Any;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Answers 408 when the handler takes longer than `timeout`.
pub(crate) async fn time_limit(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::TimedOut {
            secs: timeout.as_secs(),
        }
        .into_response(),
    }
}

/// Turns a panic in a handler into a 500 for that request (see [`tower_http::catch_panic`]).
pub(crate) fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = strongroom_core::blocking::panic_message(Some(payload.as_ref()));
    tracing::error!(panic = %message, "a request handler panicked; answering 500");
    ApiError::Panicked.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_panicking_handler_fails_its_request_with_the_api_error_shape() {
        let app = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("a bug");
                    }
                    "unreachable"
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(CatchPanicLayer::custom(panic_response));
        let response = app
            .clone()
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert!(
            !body.to_string().contains("a bug"),
            "the panic stays in the log"
        );
        let response = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the service goes on");
    }
}
