//! The OpenAPI document lists exactly the routes the router serves, with the same methods, and
//! is served itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use strongroom_core::{SystemClock, Vault, VaultSettings};
use strongroom_crypto::{Key, Root};
use strongroom_server::{route_paths, router, AppState, ServerSettings};
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

#[tokio::test]
async fn every_documented_method_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(strongroom_sqlite::SqliteStore::open(&dir.path().join("db")).unwrap());
    let opened = Vault::open(
        store,
        Key::<Root>::generate().unwrap(),
        Arc::new(SystemClock),
        VaultSettings::default(),
    )
    .unwrap();
    let app = router(AppState::new(opened.vault, ServerSettings::default()));
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
            assert!(
                !String::from_utf8_lossy(&bytes).contains("no_route"),
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
