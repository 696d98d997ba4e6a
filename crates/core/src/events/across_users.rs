//! Events across a namespace's users (`GET /v1/ns/{ns}/events`, `…/events/counts`), both
//! needing `list`: dashboards and the Telegram bot's usage reports read every user's log at
//! once instead of user by user.
//!
//! The page query decrypts only the page it answers (each event under its owner's data key,
//! and each owner's id once per page); the counts read no ciphertext at all — types are
//! matched by their keyed hash and times are plain — so the caller names the types it wants
//! counted, and gets events per type per UTC day.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use strongroom_crypto::{Data, Key};
use strongroom_storage::NamespaceEventQuery;

use super::{open_event, type_hash, EventFilter, DAY_MS};
use crate::clock::rfc3339;
use crate::operation::Op;
use crate::users::page_limit;
use crate::vault::{At, Input};
use crate::{names, CoreError, CoreResult, Page, Principal, Vault};

/// Types one counts request may name.
pub const MAX_COUNTED_TYPES: usize = 20;
/// The longest time range counts cover.
pub const MAX_COUNT_DAYS: i64 = 400;

/// An event of some user of the namespace, decrypted, with the user's own id.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceEvent {
    pub user: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub details: Map<String, Value>,
}

/// How many events of one type fell on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCount {
    #[serde(rename = "type")]
    pub event_type: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub count: u64,
}

/// An event owner's data key and own id, read once per page.
type Owner = (Arc<Key<Data>>, String);

fn cursor_of(time: i64, user_hash: &[u8], id: &[u8]) -> String {
    format!("{time}.{}.{}", hex::encode(user_hash), hex::encode(id))
}

fn parse_cursor(cursor: &str) -> CoreResult<(i64, Vec<u8>, Vec<u8>)> {
    let bad = || CoreError::Invalid {
        field: "cursor",
        rule: "is not a cursor from a previous page".into(),
    };
    let mut parts = cursor.splitn(3, '.');
    let (Some(time), Some(user), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok((
        time.parse().map_err(|_| bad())?,
        hex::decode(user).map_err(|_| bad())?,
        hex::decode(id).map_err(|_| bad())?,
    ))
}

impl Vault {
    /// Every user's events in a namespace, newest first, optionally of one type and within a
    /// time range (needs `list`).
    pub fn query_namespace_events(
        &self,
        who: &Principal,
        ns: &str,
        filter: &EventFilter,
    ) -> CoreResult<Page<NamespaceEvent>> {
        let target = filter.event_type.as_deref().unwrap_or("");
        let parse = || {
            let limit = page_limit(filter.limit)?;
            if let Some(t) = &filter.event_type {
                names::event_type(t)?;
            }
            let before = filter
                .cursor
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(parse_cursor)
                .transpose()?;
            Ok(Input((limit, before)))
        };
        self.execute(
            who,
            Op::EventQueryNamespace,
            At::name(ns, target),
            parse,
            |Input((limit, before))| {
                let keys = self.keyring().namespace(ns)?;
                let rows = self
                    .storage()
                    .query_namespace_events(&NamespaceEventQuery {
                        namespace: ns.to_string(),
                        type_hash: filter
                            .event_type
                            .as_deref()
                            .map(|t| type_hash(&keys.index_key, t)),
                        since: filter.since,
                        until: filter.until,
                        before: before.clone(),
                        limit: *limit,
                    })?;
                let next_cursor = (rows.len() == *limit)
                    .then(|| rows.last().map(|r| cursor_of(r.time, &r.user_hash, &r.id)))
                    .flatten();
                let mut owners: HashMap<Vec<u8>, Option<Owner>> = HashMap::new();
                let mut items = Vec::with_capacity(rows.len());
                for row in rows {
                    if !owners.contains_key(&row.user_hash) {
                        // An owner erased since the query found the row: its events are gone.
                        let owner = match self.storage().get_user(ns, &row.user_hash)? {
                            Some(user) => Some((
                                self.keyring().data_key(&keys, &user)?,
                                self.decrypt_user_id(&keys, &user)?,
                            )),
                            None => None,
                        };
                        owners.insert(row.user_hash.clone(), owner);
                    }
                    let Some(Some((key, user))) = owners.get(&row.user_hash) else {
                        continue;
                    };
                    let event = open_event(key, ns, &row, filter.event_type.as_deref())?;
                    items.push(NamespaceEvent {
                        user: user.clone(),
                        id: event.id,
                        event_type: event.event_type,
                        time: event.time,
                        details: event.details,
                    });
                }
                Ok(Page { items, next_cursor })
            },
        )
    }

    /// Events per type per UTC day over every user of a namespace, for the types named
    /// (needs `list`). Reads no ciphertext. `since`/`until` in Unix ms (default: the last 30
    /// days); at most [`MAX_COUNT_DAYS`] days and [`MAX_COUNTED_TYPES`] types.
    pub fn count_namespace_events(
        &self,
        who: &Principal,
        ns: &str,
        types: &[String],
        since: Option<i64>,
        until: Option<i64>,
    ) -> CoreResult<Vec<EventCount>> {
        let count = types.len().to_string();
        let parse = || {
            if types.is_empty() || types.len() > MAX_COUNTED_TYPES {
                return Err(CoreError::Invalid {
                    field: "type",
                    rule: format!("name 1 to {MAX_COUNTED_TYPES} event types to count"),
                });
            }
            for t in types {
                names::event_type(t)?;
            }
            let until = until.unwrap_or_else(|| self.now_ms());
            let since = since.unwrap_or(until - 30 * DAY_MS);
            if since > until || until - since > MAX_COUNT_DAYS * DAY_MS {
                return Err(CoreError::Invalid {
                    field: "from",
                    rule: format!("must be before `to`, at most {MAX_COUNT_DAYS} days earlier"),
                });
            }
            Ok(Input((since, until)))
        };
        self.execute(
            who,
            Op::EventCounts,
            At::new(ns, &count),
            parse,
            |Input((since, until))| {
                let keys = self.keyring().namespace(ns)?;
                let mut out = Vec::new();
                for t in types {
                    let buckets = self.storage().count_events(
                        ns,
                        &type_hash(&keys.index_key, t),
                        *since,
                        *until,
                        DAY_MS,
                    )?;
                    out.extend(buckets.into_iter().map(|(day, count)| EventCount {
                        event_type: t.clone(),
                        day: rfc3339(day)[..10].to_string(),
                        count,
                    }));
                }
                Ok(out)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = cursor_of(42, &[1, 2], &[3]);
        assert_eq!(parse_cursor(&c).unwrap(), (42, vec![1, 2], vec![3]));
        for bad in ["", "1", "1.zz.00", "x.00.00", "1.00"] {
            assert!(parse_cursor(bad).is_err(), "{bad:?}");
        }
    }
}
