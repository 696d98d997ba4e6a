//! Events: an append-only, per-user log (a bot's "user ran /play at 12:03"), encrypted under
//! the user's data key. The event type is stored only as a keyed hash (so "which users did X"
//! cannot be read from the database), its plain name sealed with the details. Appends come in
//! batches of up to 1,000, one transaction each. A namespace may set a retention in days; the
//! `event-retention` background job deletes older events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strongroom_crypto::{random, Data, Index, Key};
use strongroom_storage::{EventQuery, EventRow};

use crate::clock::{parse_rfc3339, rfc3339};
use crate::credentials::object_depth;
use crate::keyring::contexts;
use crate::operation::Op;
use crate::users::{page_limit, UserRef};
use crate::vault::At;
use crate::{names, CoreError, CoreResult, Page, Principal, Vault};

mod across_users;
pub use across_users::{EventCount, NamespaceEvent, MAX_COUNTED_TYPES, MAX_COUNT_DAYS};

const MAX_BATCH: usize = 1000;
const MAX_DETAILS_DEPTH: usize = 16;
const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;
const MAX_RETENTION_DAYS: u32 = 3650;
const DAY_MS: i64 = 24 * 3600 * 1000;
const RETENTION_BATCH: usize = 5000;

/// An event to append.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// The event type, e.g. `command.play`: 1–64 of `A-Z a-z 0-9 . _ - :`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339; defaults to now. At most 5 minutes in the future.
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub details: Map<String, Value>,
}

/// A stored event, decrypted.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: String,
    pub details: Map<String, Value>,
}

/// What is sealed for each event.
#[derive(Serialize, Deserialize)]
struct Sealed {
    #[serde(rename = "type")]
    event_type: String,
    details: Map<String, Value>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub event_type: Option<String>,
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// The keyed hash an event's type is filtered by. Frozen (pinned in `format_vectors`).
pub(crate) fn type_hash(index_key: &Key<Index>, event_type: &str) -> Vec<u8> {
    let mut message = b"event-type\0".to_vec();
    message.extend_from_slice(event_type.as_bytes());
    index_key.mac(&message).to_vec()
}

fn cursor_of(row: &EventRow) -> String {
    format!("{}.{}", row.time, hex::encode(&row.id))
}

pub(crate) fn parse_cursor(cursor: &str) -> CoreResult<(i64, Vec<u8>)> {
    let bad = || CoreError::Invalid {
        field: "cursor",
        rule: "is not a cursor from a previous page".into(),
    };
    let (time, id) = cursor.split_once('.').ok_or_else(bad)?;
    Ok((
        time.parse().map_err(|_| bad())?,
        hex::decode(id).map_err(|_| bad())?,
    ))
}

/// Decrypts one stored event of its owner (`key`); with `expected_type`, the decrypted type
/// must be that one.
pub(crate) fn open_event(
    key: &Key<Data>,
    ns: &str,
    row: &EventRow,
    expected_type: Option<&str>,
) -> CoreResult<Event> {
    let plain = key
        .open(
            &contexts::event(ns, &row.user_hash, row.time, &row.id),
            &row.ciphertext,
        )
        .map_err(|e| CoreError::from_crypto("event", e))?;
    let sealed: Sealed =
        serde_json::from_slice(&plain).map_err(|_| CoreError::Integrity("event"))?;
    // The type hash is a column anyone with the database can copy from another event: a
    // filtered query re-checks the decrypted type.
    if expected_type.is_some_and(|t| t != sealed.event_type) {
        return Err(CoreError::Integrity("event"));
    }
    Ok(Event {
        id: hex::encode(&row.id),
        event_type: sealed.event_type,
        time: rfc3339(row.time),
        details: sealed.details,
    })
}

impl Vault {
    /// Appends a batch of events for a user (needs `write`); returns their ids.
    pub fn append_events(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        events: &[NewEvent],
    ) -> CoreResult<Vec<String>> {
        let count = events.len().to_string();
        self.execute_on_user(who, Op::EventAppend, At::new(ns, &count), user_id, || Ok(()), |user| {
            if events.is_empty() || events.len() > MAX_BATCH {
                return Err(CoreError::Invalid { field: "events", rule: format!("must hold 1 to {MAX_BATCH} events") });
            }
            let now = self.now_ms();
            let mut prepared = Vec::with_capacity(events.len());
            for e in events {
                names::event_type(&e.event_type)?;
                let time = match &e.time {
                    Some(t) => parse_rfc3339(t).ok_or_else(|| CoreError::Invalid { field: "time", rule: "must be an RFC 3339 time such as 2026-01-31T12:00:00Z".into() })?,
                    None => now,
                };
                if time > now + MAX_FUTURE_MS {
                    return Err(CoreError::Invalid { field: "time", rule: "must not be more than 5 minutes in the future".into() });
                }
                let nested = object_depth(&e.details);
                if nested > MAX_DETAILS_DEPTH {
                    return Err(CoreError::Invalid { field: "details", rule: format!("nests {nested} levels deep; at most {MAX_DETAILS_DEPTH} are allowed") });
                }
                prepared.push((e, time));
            }
            let key = self.user_key_for_write(user, user_id)?;
            let mut rows = Vec::with_capacity(prepared.len());
            for (e, time) in prepared {
                let id = random::bytes::<16>().map_err(|e| CoreError::Internal(e.to_string()))?.to_vec();
                let plain = zeroize::Zeroizing::new(
                    serde_json::to_vec(&Sealed { event_type: e.event_type.clone(), details: e.details.clone() })
                        .map_err(|e| CoreError::Internal(e.to_string()))?,
                );
                let ciphertext = key
                    .seal(1, &contexts::event(ns, &user.hash, time, &id), &plain)
                    .map_err(|e| CoreError::Internal(e.to_string()))?;
                rows.push(EventRow { namespace: ns.to_string(), user_hash: user.hash.clone(), time, id, type_hash: type_hash(&user.keys.index_key, &e.event_type), ciphertext });
            }
            self.storage().append_events(&rows)?;
            Ok(rows.iter().map(|r| hex::encode(&r.id)).collect())
        })
    }

    /// A user's events, newest first (needs `read`).
    pub fn query_events(
        &self,
        who: &Principal,
        ns: &str,
        user_id: &str,
        filter: &EventFilter,
    ) -> CoreResult<Page<Event>> {
        let target = filter.event_type.as_deref().unwrap_or("");
        self.execute_on_user(
            who,
            Op::EventQuery,
            At::name(ns, target),
            user_id,
            || {
                page_limit(filter.limit)?;
                match &filter.event_type {
                    Some(t) => names::event_type(t),
                    None => Ok(()),
                }
            },
            |user| self.events_page(user, filter),
        )
    }

    /// One page of a resolved user's events, decrypted (no authorization or audit).
    fn events_page(&self, user: &UserRef, filter: &EventFilter) -> CoreResult<Page<Event>> {
        let ns = user.keys.name.as_str();
        {
            {
                let limit = page_limit(filter.limit)?;
                let before = filter
                    .cursor
                    .as_deref()
                    .filter(|c| !c.is_empty())
                    .map(parse_cursor)
                    .transpose()?;
                let query = EventQuery {
                    namespace: ns.to_string(),
                    user_hash: user.hash.clone(),
                    type_hash: filter
                        .event_type
                        .as_deref()
                        .map(|t| type_hash(&user.keys.index_key, t)),
                    since: filter.since,
                    until: filter.until,
                    before,
                    limit,
                };
                let rows = self.storage().query_events(&query)?;
                let next_cursor = (rows.len() == limit)
                    .then(|| rows.last().map(cursor_of))
                    .flatten();
                if rows.is_empty() {
                    return Ok(Page {
                        items: Vec::new(),
                        next_cursor,
                    });
                }
                let key = self
                    .existing_user_key(user)?
                    .ok_or(CoreError::Integrity("event"))?;
                let items = rows
                    .iter()
                    .map(|row| open_event(&key, ns, row, filter.event_type.as_deref()))
                    .collect::<CoreResult<Vec<_>>>()?;
                Ok(Page { items, next_cursor })
            }
        }
    }

    /// Sets how many days a namespace keeps events (`None`: forever). Needs `admin` there.
    pub fn set_event_retention(
        &self,
        who: &Principal,
        ns: &str,
        days: Option<u32>,
    ) -> CoreResult<Option<u32>> {
        let target = days.map(|d| d.to_string()).unwrap_or_default();
        self.execute(
            who,
            Op::EventRetention,
            At::new(ns, &target),
            || {
                if let Some(d) = days {
                    if d == 0 || d > MAX_RETENTION_DAYS {
                        return Err(CoreError::Invalid {
                            field: "days",
                            rule: format!(
                                "must be between 1 and {MAX_RETENTION_DAYS} (or null for no limit)"
                            ),
                        });
                    }
                }
                self.keyring().namespace(ns).map(|_| ())
            },
            |()| {
                self.storage().set_event_retention(ns, days)?;
                Ok(days)
            },
        )
    }

    /// Background work: deletes events past their namespace's retention. `Ok(true)` when more
    /// may be waiting.
    pub(crate) fn enforce_event_retention(&self) -> CoreResult<bool> {
        let mut more = false;
        for (ns, days) in self.storage().event_retentions()? {
            let cutoff = self.now_ms() - i64::from(days) * DAY_MS;
            let who = Principal::system("job:event-retention");
            let deleted = self
                .storage()
                .delete_events_before(&ns, cutoff, RETENTION_BATCH)?;
            if deleted > 0 {
                let count = deleted.to_string();
                self.record_internal(
                    &who,
                    Op::EventExpire,
                    At::new(&ns, &count),
                    &[],
                    &Ok::<(), CoreError>(()),
                );
            }
            more |= deleted == RETENTION_BATCH as u64;
        }
        Ok(more)
    }

    /// Every event of a resolved user, decrypted, for export (no authorization or audit).
    pub(crate) fn all_events(&self, user: &UserRef) -> CoreResult<Vec<Event>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let filter = EventFilter {
                cursor: cursor.clone(),
                limit: 1000,
                ..EventFilter::default()
            };
            let page = self.events_page(user, &filter)?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }
}
