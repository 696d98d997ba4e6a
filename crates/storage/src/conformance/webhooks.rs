//! Conformance checks for webhooks: subscriptions, events fanned out to the subscriptions that
//! want them in one write, claims that one sender holds at a time and that keep each user's
//! events in order, outcomes, listing, redelivery.

use super::ns;
use crate::*;

fn hook(name: &str, events: &[&str], enabled: bool) -> WebhookRow {
    WebhookRow {
        namespace: "app".into(),
        name: name.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        enabled,
        config: format!("config-{name}").into_bytes(),
        sealed_secret: vec![7; 40],
        created_at: 1,
    }
}

fn event(id: &str, kind: &str, user: u8, at: i64) -> NewWebhookEvent {
    NewWebhookEvent {
        namespace: "app".into(),
        event_id: id.into(),
        event_type: kind.into(),
        user_hash: if user == 0 {
            Vec::new()
        } else {
            vec![user; 32]
        },
        payload: format!("payload-{id}").into_bytes(),
        created_at: at,
        only: None,
    }
}

fn outcome(state: DeliveryState, attempts: u32, next: i64, now: i64) -> DeliveryOutcome {
    DeliveryOutcome {
        state,
        attempts,
        next_attempt_at: next,
        last_status: Some(503),
        last_error: Some("http_503".into()),
        now,
    }
}

pub fn webhooks_fan_out_claim_in_order_and_redeliver(s: &dyn Storage) {
    ns(s, "app");
    ns(s, "other");
    s.put_webhook(&hook(
        "ops",
        &["credential.refresh_failed", "user.erased"],
        true,
    ))
    .unwrap();
    s.put_webhook(&hook("all", &["*"], true)).unwrap();
    s.put_webhook(&hook("off", &["*"], false)).unwrap();
    assert_eq!(
        s.list_webhooks("app")
            .unwrap()
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>(),
        ["all", "off", "ops"]
    );
    assert_eq!(
        s.get_webhook("app", "ops").unwrap().unwrap(),
        hook("ops", &["credential.refresh_failed", "user.erased"], true)
    );
    assert!(s.list_webhooks("other").unwrap().is_empty());

    assert_eq!(
        s.emit_webhook_event(&event("e1", "credential.refresh_failed", 1, 10))
            .unwrap(),
        2
    );
    assert_eq!(
        s.emit_webhook_event(&event("e2", "keys.rotated", 0, 11))
            .unwrap(),
        1
    );
    assert_eq!(
        s.emit_webhook_event(&event("e3", "user.erased", 1, 12))
            .unwrap(),
        2
    );
    assert_eq!(
        s.emit_webhook_event(&event("e4", "credential.refresh_failed", 2, 13))
            .unwrap(),
        2
    );
    let ping = NewWebhookEvent {
        only: Some("off".into()),
        ..event("e5", "webhook.test", 0, 14)
    };
    assert_eq!(
        s.emit_webhook_event(&ping).unwrap(),
        1,
        "a ping goes to its one subscription"
    );
    let nobody = NewWebhookEvent {
        namespace: "other".into(),
        ..event("e6", "user.erased", 1, 15)
    };
    assert_eq!(s.emit_webhook_event(&nobody).unwrap(), 0);

    // Only each (subscription, user)'s oldest pending delivery is claimable.
    let claimed = s.claim_deliveries("node-a", 100, 1_000, 10).unwrap();
    let mut got: Vec<(String, String)> = claimed
        .iter()
        .map(|d| (d.webhook.clone(), d.event_id.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("all", "e1"),
            ("all", "e2"),
            ("all", "e4"),
            ("off", "e5"),
            ("ops", "e1"),
            ("ops", "e4")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let e1 = claimed
        .iter()
        .find(|d| d.webhook == "ops" && d.event_id == "e1")
        .unwrap();
    assert_eq!(
        (
            e1.payload.as_slice(),
            e1.user_hash.clone(),
            e1.event_created_at
        ),
        (&b"payload-e1"[..], vec![1; 32], 10)
    );
    assert!(
        s.claim_deliveries("node-b", 101, 131, 10)
            .unwrap()
            .is_empty(),
        "claimed ones are held"
    );

    // The ops delivery of e1 fails (retry later); the all delivery of e1 succeeds.
    assert!(s
        .finish_delivery(
            "app",
            "ops",
            e1.seq,
            "node-a",
            &outcome(DeliveryState::Pending, 1, 200, 102)
        )
        .unwrap());
    assert!(
        !s.finish_delivery(
            "app",
            "ops",
            e1.seq,
            "node-b",
            &outcome(DeliveryState::Dead, 9, 0, 102)
        )
        .unwrap(),
        "not the holder"
    );
    let all_e1 = claimed
        .iter()
        .find(|d| d.webhook == "all" && d.event_id == "e1")
        .unwrap();
    let delivered = DeliveryOutcome {
        state: DeliveryState::Delivered,
        last_status: Some(200),
        last_error: None,
        ..outcome(DeliveryState::Delivered, 1, 0, 103)
    };
    assert!(s
        .finish_delivery("app", "all", all_e1.seq, "node-a", &delivered)
        .unwrap());
    // e3 for user 1 on `all` is next; on `ops` it waits behind the retried e1.
    let next = s.claim_deliveries("node-b", 150, 180, 10).unwrap();
    let ids: Vec<(&str, &str)> = next
        .iter()
        .map(|d| (d.webhook.as_str(), d.event_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [("all", "e3")],
        "ordering per user; others still held by node-a"
    );
    // node-a's claims run out at 1,000: another sender takes them (node-a died mid-delivery),
    // with the retried e1, due again since 200.
    let taken = s.claim_deliveries("node-c", 1_001, 2_000, 10).unwrap();
    assert!(
        taken
            .iter()
            .any(|d| d.webhook == "ops" && d.event_id == "e4"),
        "{taken:?}"
    );
    let e1_again = taken
        .iter()
        .find(|d| d.webhook == "ops" && d.event_id == "e1")
        .expect("due again");
    assert_eq!((e1_again.attempts, e1_again.last_status), (1, Some(503)));
    assert!(s
        .finish_delivery(
            "app",
            "ops",
            e1_again.seq,
            "node-c",
            &outcome(DeliveryState::Dead, 2, 0, 1_002)
        )
        .unwrap());

    // Listing, dead letters and redelivery.
    let ops = s.list_deliveries("app", "ops", None, None, 10).unwrap();
    assert_eq!(
        ops.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e4", "e3", "e1"],
        "newest first"
    );
    let dead = s
        .list_deliveries("app", "ops", Some(DeliveryState::Dead), None, 10)
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(s.redeliver("app", "ops", dead[0].seq, 300).unwrap());
    assert!(!s.redeliver("app", "ops", 999_999, 300).unwrap());
    let pending = s
        .list_deliveries("app", "ops", Some(DeliveryState::Pending), None, 10)
        .unwrap();
    assert!(pending
        .iter()
        .any(|d| d.seq == dead[0].seq && d.attempts == 0));
    let page = s
        .list_deliveries("app", "ops", None, Some(ops[1].seq), 10)
        .unwrap();
    assert_eq!(
        page.iter().map(|d| d.event_id.as_str()).collect::<Vec<_>>(),
        ["e1"]
    );

    assert!(s.delete_webhook("app", "ops").unwrap());
    assert!(!s.delete_webhook("app", "ops").unwrap());
    assert!(s
        .list_deliveries("app", "ops", None, None, 10)
        .unwrap()
        .is_empty());
    assert!(s.get_webhook("app", "ops").unwrap().is_none());
}

/// A credential write's status (and the event that tells of it) is stored in the version's
/// transaction: all three together, or — when the version is refused — none of them.
pub fn credential_status_is_written_with_its_version(s: &dyn Storage) {
    super::ns_with_users(s, "app");
    s.put_webhook(&hook("recoveries", &["credential.recovered"], true))
        .unwrap();
    let k = super::key("app", 1, "c");
    let with_status = |v: u64, event: &str| NewVersion {
        status: Some(StatusOnWrite {
            status: CredentialStatusRow {
                key: k.clone(),
                status: "valid".into(),
                error: None,
                updated_at: 10 + v as i64,
                refresh_due_at: Some(100 + v as i64),
                failures: 0,
                verified: None,
                verified_at: None,
                sealed_name: Some(b"sealed".to_vec()),
            },
            event: Some(self::event(event, "credential.recovered", 1, 10)),
        }),
        ..super::version(v, 10)
    };
    let refused = |_: u64| -> Result<Vec<u8>, String> { Err("no".into()) };
    let result =
        s.put_credential_version(&k, None, &with_status(1, "e0"), &refused, &super::pointer);
    assert!(
        matches!(result, Err(StorageError::Aborted(_))),
        "{result:?}"
    );
    assert_eq!(
        s.get_credential_status(&k).unwrap(),
        None,
        "no status without its version"
    );
    assert!(s
        .list_deliveries("app", "recoveries", None, None, 10)
        .unwrap()
        .is_empty());

    s.put_credential_version(
        &k,
        None,
        &with_status(1, "e1"),
        &super::seal,
        &super::pointer,
    )
    .unwrap();
    let status = s.get_credential_status(&k).unwrap().unwrap();
    assert_eq!(
        (status.status.as_str(), status.refresh_due_at),
        ("valid", Some(101))
    );
    let deliveries = s
        .list_deliveries("app", "recoveries", None, None, 10)
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].event_id, "e1");

    // A lost check-and-set writes neither.
    let lost = s.put_credential_version(
        &k,
        Some(0),
        &with_status(2, "e2"),
        &super::seal,
        &super::pointer,
    );
    assert!(matches!(lost, Err(StorageError::Conflict(_))), "{lost:?}");
    assert_eq!(
        s.get_credential_status(&k).unwrap().unwrap().refresh_due_at,
        Some(101)
    );
    assert_eq!(
        s.list_deliveries("app", "recoveries", None, None, 10)
            .unwrap()
            .len(),
        1
    );
}
