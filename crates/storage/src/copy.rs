//! Whole-store copy between backends (`strongroom migrate`): the interchange description of
//! every table, and the trait a backend implements to export and import rows as they are.
//! Nothing is decrypted: ciphertexts, wrapped keys and hashes are copied byte for byte.

use crate::StorageResult;

/// The type of a column in the interchange format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int,
    Text,
    Bytes,
    Bool,
}

/// One table: its columns in order, and how many leading columns form the primary key.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    pub key_columns: usize,
}

use ColumnType::{Bool, Bytes, Int, Text};

/// Every table a store holds that a copy must carry, parents before children. Leases are not
/// copied: they describe the running cluster, not the data.
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "meta",
        columns: &[("key", Text), ("value", Bytes)],
        key_columns: 1,
    },
    TableSpec {
        name: "namespaces",
        columns: &[
            ("name", Text),
            ("created_at", Int),
            ("wrapped_index_key", Bytes),
            ("primary_kek_version", Int),
            ("min_decrypt_version", Int),
        ],
        key_columns: 1,
    },
    TableSpec {
        name: "keks",
        columns: &[
            ("namespace", Text),
            ("version", Int),
            ("wrapped_key", Bytes),
            ("created_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "users",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("encrypted_id", Bytes),
            ("wrapped_key", Bytes),
            ("kek_version", Int),
            ("created_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "credentials",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("name", Text),
            ("current_version", Int),
            ("oldest_version", Int),
            ("max_versions", Int),
            ("created_at", Int),
            ("updated_at", Int),
            ("pointer_mac", Bytes),
            ("sealed_name", Bytes),
        ],
        key_columns: 3,
    },
    TableSpec {
        name: "credential_versions",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("name", Text),
            ("version", Int),
            ("created_at", Int),
            ("deleted_at", Int),
            ("destroyed", Bool),
            ("ciphertext", Bytes),
        ],
        key_columns: 4,
    },
    TableSpec {
        name: "events",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("time", Int),
            ("id", Bytes),
            ("type_hash", Bytes),
            ("ciphertext", Bytes),
        ],
        key_columns: 4,
    },
    TableSpec {
        name: "event_retention",
        columns: &[("namespace", Text), ("days", Int)],
        key_columns: 1,
    },
    TableSpec {
        name: "collections",
        columns: &[
            ("namespace", Text),
            ("name", Text),
            ("settings", Bytes),
            ("created_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "records",
        columns: &[
            ("namespace", Text),
            ("collection", Text),
            ("user_hash", Bytes),
            ("key", Text),
            ("version", Int),
            ("expires_at", Int),
            ("updated_at", Int),
            ("ciphertext", Bytes),
            ("sealed_key", Bytes),
        ],
        key_columns: 4,
    },
    TableSpec {
        name: "record_index",
        columns: &[
            ("namespace", Text),
            ("collection", Text),
            ("field", Text),
            ("value_hash", Bytes),
            ("user_hash", Bytes),
            ("key", Text),
            ("is_unique", Bool),
        ],
        key_columns: 6,
    },
    TableSpec {
        name: "tokens",
        columns: &[
            ("id", Text),
            ("secret_hash", Bytes),
            ("name", Text),
            ("policy", Bytes),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
        ],
        key_columns: 1,
    },
    TableSpec {
        name: "erasures",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("started_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "erasure_ledger",
        columns: &[
            ("id", Text),
            ("namespace", Text),
            ("user_hash", Bytes),
            ("erased_at", Int),
            ("shipped", Bool),
        ],
        key_columns: 1,
    },
    TableSpec {
        name: "providers",
        columns: &[
            ("namespace", Text),
            ("name", Text),
            ("config", Bytes),
            ("sealed_secret", Bytes),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "credential_status",
        columns: &[
            ("namespace", Text),
            ("user_hash", Bytes),
            ("name", Text),
            ("status", Text),
            ("error", Text),
            ("updated_at", Int),
            ("refresh_due_at", Int),
            ("failures", Int),
            ("verified", Bool),
            ("verified_at", Int),
            ("sealed_name", Bytes),
        ],
        key_columns: 3,
    },
    TableSpec {
        name: "files",
        columns: &[
            ("namespace", Text),
            ("file_id", Text),
            ("user_hash", Bytes),
            ("object_id", Text),
            ("state", Int),
            ("size", Int),
            ("piece_size", Int),
            ("header", Bytes),
            ("sealed", Bytes),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "file_policies",
        columns: &[("namespace", Text), ("policy", Bytes)],
        key_columns: 1,
    },
    TableSpec {
        name: "file_link_uses",
        columns: &[("link_id", Text), ("expires_at", Int)],
        key_columns: 1,
    },
    TableSpec {
        name: "transit_keys",
        columns: &[
            ("namespace", Text),
            ("name", Text),
            ("revision", Int),
            ("body", Bytes),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "webhooks",
        columns: &[
            ("namespace", Text),
            ("name", Text),
            ("events", Text),
            ("enabled", Bool),
            ("config", Bytes),
            ("sealed_secret", Bytes),
            ("created_at", Int),
        ],
        key_columns: 2,
    },
    TableSpec {
        name: "webhook_events",
        columns: &[
            ("seq", Int),
            ("namespace", Text),
            ("event_id", Text),
            ("event_type", Text),
            ("user_hash", Bytes),
            ("payload", Bytes),
            ("created_at", Int),
        ],
        key_columns: 1,
    },
    TableSpec {
        name: "webhook_deliveries",
        columns: &[
            ("namespace", Text),
            ("webhook", Text),
            ("seq", Int),
            ("user_hash", Bytes),
            ("state", Int),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("claimed_by", Text),
            ("claimed_until", Int),
            ("last_status", Int),
            ("last_error", Text),
            ("updated_at", Int),
        ],
        key_columns: 3,
    },
    TableSpec {
        name: "audit",
        columns: &[
            ("seq", Int),
            ("time", Int),
            ("token_id", Text),
            ("action", Text),
            ("namespace", Text),
            ("user_hash", Text),
            ("target", Text),
            ("outcome", Text),
            ("hash", Bytes),
        ],
        key_columns: 1,
    },
];

/// One value as it crosses between backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawValue {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// One row, columns in [`TableSpec::columns`] order.
pub type RawRow = Vec<RawValue>;

/// Exporting and importing rows as they are.
pub trait TableCopy {
    /// Rows of `table` in primary-key order, after the row whose key is `after`.
    fn export_rows(
        &self,
        table: &TableSpec,
        after: Option<&[RawValue]>,
        limit: usize,
    ) -> StorageResult<Vec<RawRow>>;
    /// Inserts rows in one transaction, replacing rows with the same key. Returns rows written.
    fn import_rows(&self, table: &TableSpec, rows: &[RawRow]) -> StorageResult<u64>;
    fn count_rows(&self, table: &TableSpec) -> StorageResult<u64>;
    /// The key of the last row in primary-key order (where a resumed copy continues).
    fn last_key(&self, table: &TableSpec) -> StorageResult<Option<Vec<RawValue>>>;
}

impl TableSpec {
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn key_list(&self) -> String {
        self.columns[..self.key_columns]
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }
}
