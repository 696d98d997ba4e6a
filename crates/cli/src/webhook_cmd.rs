//! `strongroom webhook …`: a namespace's webhook subscriptions, test events, deliveries and
//! redelivery (operators and namespace admins), as HTTP calls to a running server.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{print, segment, Client, Connection};
use crate::commands::query_string;

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Create or replace a subscription; a new one's signing secret is printed once.
    Put {
        namespace: String,
        name: String,
        /// The receiver's URL (http or https).
        #[arg(long)]
        url: String,
        /// Event types, comma-separated, or `*` for all (user.erased, webhook.test,
        /// credential.refresh_failed, …).
        #[arg(long)]
        events: String,
        /// Create or keep it disabled (events are not queued for it).
        #[arg(long)]
        disabled: bool,
        /// Put the app's own user id in payloads (default: the keyed user hash only).
        #[arg(long)]
        include_user_id: bool,
    },
    /// List a namespace's subscriptions.
    List { namespace: String },
    /// Delete a subscription and its deliveries.
    Delete { namespace: String, name: String },
    /// Send a webhook.test event to a subscription.
    Test { namespace: String, name: String },
    /// A subscription's deliveries, newest first.
    Deliveries {
        namespace: String,
        name: String,
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Queue a delivery again (a dead letter, or one to repeat).
    Redeliver {
        namespace: String,
        name: String,
        seq: u64,
    },
}

fn done(value: Value) -> Result<ExitCode> {
    print(&value)?;
    Ok(ExitCode::SUCCESS)
}

pub fn webhook(conn: &Connection, cmd: WebhookCommand) -> Result<ExitCode> {
    let c = Client::new(conn)?;
    let base = |ns: &str, name: &str| format!("/v1/ns/{}/webhooks/{}", segment(ns), segment(name));
    match cmd {
        WebhookCommand::Put {
            namespace,
            name,
            url,
            events,
            disabled,
            include_user_id,
        } => {
            let events: Vec<&str> = events
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .collect();
            let body = json!({"url": url, "events": events, "enabled": !disabled, "include_user_id": include_user_id});
            done(c.call("PUT", &base(&namespace, &name), Some(&body))?)
        }
        WebhookCommand::List { namespace } => done(c.call(
            "GET",
            &format!("/v1/ns/{}/webhooks", segment(&namespace)),
            None,
        )?),
        WebhookCommand::Delete { namespace, name } => {
            c.call("DELETE", &base(&namespace, &name), None)?;
            done(json!({"deleted": name}))
        }
        WebhookCommand::Test { namespace, name } => {
            done(c.call("POST", &format!("{}/test", base(&namespace, &name)), None)?)
        }
        WebhookCommand::Deliveries {
            namespace,
            name,
            state,
            cursor,
            limit,
        } => {
            let query = query_string(&[
                ("state", state),
                ("cursor", cursor),
                ("limit", Some(limit.to_string())),
            ]);
            done(c.call(
                "GET",
                &format!("{}/deliveries?{query}", base(&namespace, &name)),
                None,
            )?)
        }
        WebhookCommand::Redeliver {
            namespace,
            name,
            seq,
        } => {
            c.call(
                "POST",
                &format!("{}/deliveries/{seq}/redeliver", base(&namespace, &name)),
                None,
            )?;
            done(json!({"queued": seq}))
        }
    }
}
