//! The OpenAPI document lists exactly the routes the router serves, with the same methods, and
//! is served itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use strongroom_core::{SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_server::{route_paths, router, AppState, ErrorCode, ServerSettings};
use tower::ServiceExt;

const DOCUMENT: &str = include_str!("../openapi.json");

#[test]
fn documented_paths_are_exactly_the_served_paths() {
    let doc: serde_json::Value =
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = route_paths().into_iter().collect();
    assert_eq!(documented, served, "openapi.json and the router disagree");
}

#[test]
fn error_codes_are_exactly_the_documented_ones() {
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    let documented: BTreeSet<&str> = doc["components"]["schemas"]["Error"]["properties"]["error"]
        ["properties"]["code"]["enum"]
        .as_array()
        .expect("the Error schema lists its codes")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let emitted: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        documented, emitted,
        "ErrorCode and the OpenAPI document disagree"
    );
    // Every code a response description names is one of them.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                let text = response["description"].as_str().unwrap_or("");
                for (i, part) in text.split('`').enumerate() {
                    let looks_like_code = i % 2 == 1
                        && !part.is_empty()
                        && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
                    if looks_like_code {
                        assert!(
                            emitted.contains(part),
                            "{method} {path} {status} names `{part}`, which is no error code"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_documented_method_is_routed() {
    // The vault opens (storage work) outside the runtime, as the binary does.
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(strongroom_sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
    let opened = Vault::open(
        store,
        Key::<Root>::generate().unwrap(),
        Arc::new(SystemClock),
        VaultSettings::default(),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(documented_methods_are_routed(opened.vault));
}

async fn documented_methods_are_routed(vault: Vault) {
    let app = router(AppState::new(vault, ServerSettings::default()));
    let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{namespace}", "app")
            .replace("{user}", "u")
            .replace("{name}", "c")
            .replace("{id}", "0000000000000000");
        for method in ops.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.clone())
                        .uri(&concrete)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            assert_ne!(
                body["error"]["code"], "no_route",
                "{method} {path} is documented but not routed"
            );
        }
    }
    let response = app
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
