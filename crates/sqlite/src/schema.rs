//! Versioned schema migrations. Each entry is applied once, in order, inside a transaction;
//! `PRAGMA user_version` records how many have run. Existing entries are frozen: change the
//! schema only by appending a migration.

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the spine — keys, users, credentials, tokens.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE namespaces (
        name TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        wrapped_index_key BLOB NOT NULL,
        primary_kek_version INTEGER NOT NULL,
        min_decrypt_version INTEGER NOT NULL
    );
    CREATE TABLE keks (
        namespace TEXT NOT NULL REFERENCES namespaces(name),
        version INTEGER NOT NULL,
        wrapped_key BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, version)
    ) WITHOUT ROWID;
    CREATE TABLE users (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        encrypted_id BLOB NOT NULL,
        wrapped_key BLOB NOT NULL,
        kek_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, user_hash)
    ) WITHOUT ROWID;
    CREATE INDEX users_by_kek ON users (namespace, kek_version, user_hash);
    CREATE TABLE credentials (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        current_version INTEGER NOT NULL,
        oldest_version INTEGER NOT NULL,
        max_versions INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, user_hash, name)
    ) WITHOUT ROWID;
    CREATE TABLE credential_versions (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER,
        destroyed INTEGER NOT NULL DEFAULT 0,
        ciphertext BLOB,
        PRIMARY KEY (namespace, user_hash, name, version)
    ) WITHOUT ROWID;
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        policy BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
    );
    "#,
    // 2: leases for background jobs.
    r#"
    CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at INTEGER NOT NULL);
    "#,
    // 3: authentication failures shared by every node.
    r#"
    CREATE TABLE auth_failures (
        client TEXT PRIMARY KEY,
        window_start INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        locked_until INTEGER
    );
    "#,
    // 4: erasures whose purge has not finished.
    r#"
    CREATE TABLE erasures (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        started_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, user_hash)
    ) WITHOUT ROWID;
    "#,
    // 5: per-user events and per-namespace retention.
    r#"
    CREATE TABLE events (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        time INTEGER NOT NULL,
        id BLOB NOT NULL,
        type_hash BLOB NOT NULL,
        ciphertext BLOB NOT NULL,
        PRIMARY KEY (namespace, user_hash, time, id)
    );
    CREATE INDEX events_by_type ON events (namespace, user_hash, type_hash, time, id);
    CREATE INDEX events_by_age ON events (namespace, time);
    CREATE TABLE event_retention (namespace TEXT PRIMARY KEY, days INTEGER NOT NULL);
    "#,
    // 6: record collections, records, and their keyed-hash index.
    r#"
    CREATE TABLE collections (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        settings BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE records (
        namespace TEXT NOT NULL,
        collection TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        key TEXT NOT NULL,
        version INTEGER NOT NULL,
        expires_at INTEGER,
        updated_at INTEGER NOT NULL,
        ciphertext BLOB NOT NULL,
        PRIMARY KEY (namespace, collection, user_hash, key)
    );
    CREATE INDEX records_by_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX records_by_owner ON records (namespace, user_hash);
    CREATE TABLE record_index (
        namespace TEXT NOT NULL,
        collection TEXT NOT NULL,
        field TEXT NOT NULL,
        value_hash BLOB NOT NULL,
        user_hash BLOB NOT NULL,
        key TEXT NOT NULL,
        is_unique INTEGER NOT NULL,
        PRIMARY KEY (namespace, collection, field, value_hash, user_hash, key)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX record_index_unique ON record_index (namespace, collection, field, value_hash) WHERE is_unique = 1;
    CREATE INDEX record_index_by_record ON record_index (namespace, collection, user_hash, key);
    "#,
    // 7: OAuth providers and credential refresh statuses.
    r#"
    CREATE TABLE providers (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        config BLOB NOT NULL,
        sealed_secret BLOB NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE credential_status (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        updated_at INTEGER NOT NULL,
        refresh_due_at INTEGER,
        failures INTEGER NOT NULL DEFAULT 0,
        verified INTEGER,
        verified_at INTEGER,
        PRIMARY KEY (namespace, user_hash, name)
    );
    CREATE INDEX credential_status_by_status ON credential_status (namespace, status);
    CREATE INDEX credential_status_by_due ON credential_status (refresh_due_at) WHERE refresh_due_at IS NOT NULL;
    "#,
    // 8: encrypted files' metadata, per-namespace file policies, used one-time links.
    r#"
    CREATE TABLE files (
        namespace TEXT NOT NULL,
        file_id TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        object_id TEXT NOT NULL UNIQUE,
        state INTEGER NOT NULL,
        size INTEGER NOT NULL,
        piece_size INTEGER NOT NULL,
        header BLOB NOT NULL,
        sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, file_id)
    ) WITHOUT ROWID;
    CREATE INDEX files_by_user ON files (namespace, user_hash, created_at, file_id);
    CREATE INDEX files_to_sweep ON files (state, updated_at) WHERE state <> 1;
    CREATE TABLE file_policies (namespace TEXT PRIMARY KEY, policy BLOB NOT NULL);
    CREATE TABLE file_link_uses (link_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
    "#,
    // 9: the audit chain's anchor row (empty: anchor at the next start). Its absence after
    // this migration means it was deleted.
    r#"
    INSERT OR IGNORE INTO meta (key, value) VALUES ('audit_anchor', x'');
    "#,
    // 10: the authenticator of each credential's current-version pointer (NULL until the
    // vault authenticates the rows written before it).
    r#"
    ALTER TABLE credentials ADD COLUMN pointer_mac BLOB;
    "#,
    // 11: names sealed — each credential's name (also kept with its refresh status) and each
    // record's key sealed under the owner's data key (NULL until the vault re-keys the rows
    // written before it by the name's keyed hash). The status of a credential that no longer
    // exists (revoked or deleted) has no name left to seal and is dropped.
    r#"
    ALTER TABLE credentials ADD COLUMN sealed_name BLOB;
    ALTER TABLE credential_status ADD COLUMN sealed_name BLOB;
    ALTER TABLE records ADD COLUMN sealed_key BLOB;
    DELETE FROM credential_status WHERE NOT EXISTS (SELECT 1 FROM credentials c
        WHERE c.namespace = credential_status.namespace AND c.user_hash = credential_status.user_hash
        AND c.name = credential_status.name);
    "#,
    // 12: named keys of each namespace's Transit engine (versions wrapped under the namespace's
    // key-encryption keys, settings, as one authenticated body).
    r#"
    CREATE TABLE transit_keys (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        revision INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (namespace, name)
    ) WITHOUT ROWID;
    "#,
    // 13: the erasure ledger — every erasure (keyed user hash and time only), kept so backups
    // restored later can erase again; `shipped` once copied to the ledger outside the store.
    r#"
    CREATE TABLE erasure_ledger (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        erased_at INTEGER NOT NULL,
        shipped INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX erasure_ledger_unshipped ON erasure_ledger (shipped, id);
    "#,
    // 14: namespace-wide event queries and counts by type and time.
    r#"
    CREATE INDEX events_by_namespace_type ON events (namespace, type_hash, time);
    "#,
    // 15: webhook subscriptions, the event outbox, and each event's delivery per subscription.
    r#"
    CREATE TABLE webhooks (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        events TEXT NOT NULL,
        enabled INTEGER NOT NULL,
        config BLOB NOT NULL,
        sealed_secret BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, name)
    ) WITHOUT ROWID;
    CREATE TABLE webhook_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        payload BLOB NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        namespace TEXT NOT NULL,
        webhook TEXT NOT NULL,
        seq INTEGER NOT NULL,
        user_hash BLOB NOT NULL,
        state INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_until INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, webhook, seq)
    ) WITHOUT ROWID;
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
    CREATE INDEX webhook_deliveries_order ON webhook_deliveries (namespace, webhook, user_hash, state, seq);
    "#,
    // 16: credential versions in a rowid table. In the `WITHOUT ROWID` table of migration 1 a
    // sealed ~1 KiB token set exceeded the largest payload an index page keeps inline (~1 KiB
    // of a 4 KiB page), so every version spilled ~0.7 KiB into an overflow page of its own
    // (~4.7 KiB on disk per version) and every read fetched two pages. A rowid table keeps up
    // to ~4 KiB inline: ~1.5 KiB per version, and a point read is the primary-key index plus
    // one table page, both through the page cache.
    r#"
    CREATE TABLE credential_versions_rowid (
        namespace TEXT NOT NULL,
        user_hash BLOB NOT NULL,
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        deleted_at INTEGER,
        destroyed INTEGER NOT NULL DEFAULT 0,
        ciphertext BLOB,
        PRIMARY KEY (namespace, user_hash, name, version)
    );
    INSERT INTO credential_versions_rowid
        (namespace, user_hash, name, version, created_at, deleted_at, destroyed, ciphertext)
        SELECT namespace, user_hash, name, version, created_at, deleted_at, destroyed, ciphertext
        FROM credential_versions;
    DROP TABLE credential_versions;
    ALTER TABLE credential_versions_rowid RENAME TO credential_versions;
    "#,
];

/// Migrations of the audit file, which lives beside the data file.
pub(crate) const AUDIT_MIGRATIONS: &[&str] = &[
    // 1: the hash-chained audit log.
    r#"
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        token_id TEXT NOT NULL,
        action TEXT NOT NULL,
        namespace TEXT NOT NULL,
        user_hash TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        hash BLOB NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (time);
    "#,
];
