//! Versioned schema migrations, applied at start under a transaction-scoped advisory lock so
//! several nodes starting at once apply each migration exactly once. Entries are frozen: change
//! the schema only by appending one. Text columns that are ordered or paged on use the "C"
//! collation, so order is byte order, as in SQLite.

/// Advisory lock key that serializes migrations (and nothing else).
pub(crate) const MIGRATION_LOCK: i64 = 0x5354_524f_4e47_0001;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the spine — keys, users, credentials, tokens, audit.
    r#"
    CREATE TABLE meta (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE namespaces (
        name TEXT COLLATE "C" PRIMARY KEY,
        created_at BIGINT NOT NULL,
        wrapped_index_key BYTEA NOT NULL,
        primary_kek_version BIGINT NOT NULL,
        min_decrypt_version BIGINT NOT NULL
    );
    CREATE TABLE keks (
        namespace TEXT COLLATE "C" NOT NULL REFERENCES namespaces(name),
        version BIGINT NOT NULL,
        wrapped_key BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, version)
    );
    CREATE TABLE users (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        encrypted_id BYTEA NOT NULL,
        wrapped_key BYTEA NOT NULL,
        kek_version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, user_hash)
    );
    CREATE INDEX users_by_kek ON users (namespace, kek_version, user_hash);
    CREATE TABLE credentials (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        current_version BIGINT NOT NULL,
        oldest_version BIGINT NOT NULL,
        max_versions BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, user_hash, name)
    );
    CREATE TABLE credential_versions (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        deleted_at BIGINT,
        destroyed BOOLEAN NOT NULL DEFAULT FALSE,
        ciphertext BYTEA,
        PRIMARY KEY (namespace, user_hash, name, version)
    );
    CREATE TABLE tokens (
        id TEXT COLLATE "C" PRIMARY KEY,
        secret_hash BYTEA NOT NULL,
        name TEXT NOT NULL,
        policy BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT
    );
    CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        time BIGINT NOT NULL,
        token_id TEXT NOT NULL,
        action TEXT NOT NULL,
        namespace TEXT NOT NULL,
        user_hash TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        hash BYTEA NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (time);
    "#,
    // 2: leases for background jobs.
    r#"
    CREATE TABLE leases (name TEXT COLLATE "C" PRIMARY KEY, owner TEXT NOT NULL, expires_at BIGINT NOT NULL);
    "#,
    // 3: authentication failures shared by every node.
    r#"
    CREATE TABLE auth_failures (
        client TEXT PRIMARY KEY,
        window_start BIGINT NOT NULL,
        failures BIGINT NOT NULL,
        locked_until BIGINT
    );
    "#,
    // 4: erasures whose purge has not finished.
    r#"
    CREATE TABLE erasures (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        started_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, user_hash)
    );
    "#,
    // 5: per-user events and per-namespace retention.
    r#"
    CREATE TABLE events (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        time BIGINT NOT NULL,
        id BYTEA NOT NULL,
        type_hash BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL,
        PRIMARY KEY (namespace, user_hash, time, id)
    );
    CREATE INDEX events_by_type ON events (namespace, user_hash, type_hash, time, id);
    CREATE INDEX events_by_age ON events (namespace, time);
    CREATE TABLE event_retention (namespace TEXT COLLATE "C" PRIMARY KEY, days BIGINT NOT NULL);
    "#,
    // 6: record collections, records, and their keyed-hash index.
    r#"
    CREATE TABLE collections (
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        settings BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE records (
        namespace TEXT COLLATE "C" NOT NULL,
        collection TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        expires_at BIGINT,
        updated_at BIGINT NOT NULL,
        ciphertext BYTEA NOT NULL,
        PRIMARY KEY (namespace, collection, user_hash, key)
    );
    CREATE INDEX records_by_expiry ON records (expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX records_by_owner ON records (namespace, user_hash);
    CREATE TABLE record_index (
        namespace TEXT COLLATE "C" NOT NULL,
        collection TEXT COLLATE "C" NOT NULL,
        field TEXT COLLATE "C" NOT NULL,
        value_hash BYTEA NOT NULL,
        user_hash BYTEA NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        is_unique BOOLEAN NOT NULL,
        PRIMARY KEY (namespace, collection, field, value_hash, user_hash, key)
    );
    CREATE UNIQUE INDEX record_index_unique ON record_index (namespace, collection, field, value_hash) WHERE is_unique;
    CREATE INDEX record_index_by_record ON record_index (namespace, collection, user_hash, key);
    "#,
    // 7: OAuth providers and credential refresh statuses.
    r#"
    CREATE TABLE providers (
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        config BYTEA NOT NULL,
        sealed_secret BYTEA NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE credential_status (
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        updated_at BIGINT NOT NULL,
        refresh_due_at BIGINT,
        failures BIGINT NOT NULL DEFAULT 0,
        verified BOOLEAN,
        verified_at BIGINT,
        PRIMARY KEY (namespace, user_hash, name)
    );
    CREATE INDEX credential_status_by_status ON credential_status (namespace, status);
    CREATE INDEX credential_status_by_due ON credential_status (refresh_due_at) WHERE refresh_due_at IS NOT NULL;
    "#,
    // 8: encrypted files' metadata, per-namespace file policies, used one-time links.
    r#"
    CREATE TABLE files (
        namespace TEXT COLLATE "C" NOT NULL,
        file_id TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        object_id TEXT COLLATE "C" NOT NULL UNIQUE,
        state BIGINT NOT NULL,
        size BIGINT NOT NULL,
        piece_size BIGINT NOT NULL,
        header BYTEA NOT NULL,
        sealed BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, file_id)
    );
    CREATE INDEX files_by_user ON files (namespace, user_hash, created_at, file_id);
    CREATE INDEX files_to_sweep ON files (state, updated_at) WHERE state <> 1;
    CREATE TABLE file_policies (namespace TEXT COLLATE "C" PRIMARY KEY, policy BYTEA NOT NULL);
    CREATE TABLE file_link_uses (link_id TEXT COLLATE "C" PRIMARY KEY, expires_at BIGINT NOT NULL);
    "#,
    // 9: the audit chain's anchor row (empty: anchor at the next start). Its absence after
    // this migration means it was deleted.
    r#"
    INSERT INTO meta (key, value) VALUES ('audit_anchor', ''::BYTEA) ON CONFLICT (key) DO NOTHING;
    "#,
    // 10: the authenticator of each credential's current-version pointer (NULL until the
    // vault authenticates the rows written before it).
    r#"
    ALTER TABLE credentials ADD COLUMN pointer_mac BYTEA;
    "#,
    // 11: names sealed — each credential's name (also kept with its refresh status) and each
    // record's key sealed under the owner's data key (NULL until the vault re-keys the rows
    // written before it by the name's keyed hash). The status of a credential that no longer
    // exists (revoked or deleted) has no name left to seal and is dropped.
    r#"
    ALTER TABLE credentials ADD COLUMN sealed_name BYTEA;
    ALTER TABLE credential_status ADD COLUMN sealed_name BYTEA;
    ALTER TABLE records ADD COLUMN sealed_key BYTEA;
    DELETE FROM credential_status WHERE NOT EXISTS (SELECT 1 FROM credentials c
        WHERE c.namespace = credential_status.namespace AND c.user_hash = credential_status.user_hash
        AND c.name = credential_status.name);
    "#,
    // 12: named keys of each namespace's Transit engine (versions wrapped under the namespace's
    // key-encryption keys, settings, as one authenticated body).
    r#"
    CREATE TABLE transit_keys (
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        revision BIGINT NOT NULL,
        body BYTEA NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    "#,
    // 13: the erasure ledger — every erasure (keyed user hash and time only), kept so backups
    // restored later can erase again; `shipped` once copied to the ledger outside the store.
    r#"
    CREATE TABLE erasure_ledger (
        id TEXT COLLATE "C" PRIMARY KEY,
        namespace TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        erased_at BIGINT NOT NULL,
        shipped BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX erasure_ledger_unshipped ON erasure_ledger (shipped, id);
    "#,
    // 14: namespace-wide event queries and counts by type and time.
    r#"
    CREATE INDEX events_by_namespace_type ON events (namespace, type_hash, time);
    "#,
    // 15: webhook subscriptions, the event outbox, and each event's delivery per subscription.
    r#"
    CREATE TABLE webhooks (
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        events TEXT NOT NULL,
        enabled BOOLEAN NOT NULL,
        config BYTEA NOT NULL,
        sealed_secret BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE webhook_events (
        seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        namespace TEXT COLLATE "C" NOT NULL,
        event_id TEXT COLLATE "C" NOT NULL UNIQUE,
        event_type TEXT COLLATE "C" NOT NULL,
        user_hash BYTEA NOT NULL,
        payload BYTEA NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        namespace TEXT COLLATE "C" NOT NULL,
        webhook TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        user_hash BYTEA NOT NULL,
        state BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        claimed_by TEXT NOT NULL,
        claimed_until BIGINT NOT NULL,
        last_status BIGINT,
        last_error TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (namespace, webhook, seq)
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
    CREATE INDEX webhook_deliveries_order ON webhook_deliveries (namespace, webhook, user_hash, state, seq);
    "#,
];
