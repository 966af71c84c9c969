//! Versioned schema migrations, tracked in `PRAGMA user_version` and applied at open.
//!
//! Each entry is applied once, in order, inside one transaction with the version bump, so a
//! crash mid-migration leaves the previous version intact. Entries are never edited after
//! they ship; changes are new entries.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: tenancy, sessions with their files, snapshots, apps.
    r#"
    CREATE TABLE tenants (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE users (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        email       TEXT NOT NULL,
        name        TEXT,
        created_at  INTEGER NOT NULL,
        UNIQUE (tenant_id, email)
    );
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        user_id     TEXT NOT NULL REFERENCES users(id),
        label       TEXT,
        key_hash    TEXT NOT NULL UNIQUE,
        key_prefix  TEXT NOT NULL,
        admin       INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );
    CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id);

    CREATE TABLE sessions (
        id                        TEXT PRIMARY KEY,
        tenant_id                 TEXT NOT NULL REFERENCES tenants(id),
        created_at                INTEGER NOT NULL,
        last_accessed_at          INTEGER NOT NULL,
        render_entry              TEXT,
        render_version            INTEGER NOT NULL DEFAULT 0,
        render_error              TEXT,
        rendered_at               INTEGER,
        google_scopes             TEXT,
        google_scopes_updated_at  INTEGER
    );
    CREATE INDEX sessions_by_tenant ON sessions (tenant_id, created_at);

    -- Content-addressed bytes: identical content is stored once.
    CREATE TABLE blobs (
        hash  TEXT PRIMARY KEY,
        size  INTEGER NOT NULL,
        data  BLOB NOT NULL
    );
    -- Every write of a path is a new version; a NULL blob is a tombstone (deleted).
    CREATE TABLE file_versions (
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        path        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        blob_hash   TEXT REFERENCES blobs(hash),
        size        INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (session_id, path, version)
    ) WITHOUT ROWID;
    CREATE INDEX file_versions_by_blob ON file_versions (blob_hash);

    CREATE TABLE snapshots (
        id          TEXT PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        name        TEXT,
        file_count  INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX snapshots_by_session ON snapshots (session_id, created_at);
    CREATE TABLE snapshot_files (
        snapshot_id  TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
        path         TEXT NOT NULL,
        version      INTEGER NOT NULL,
        blob_hash    TEXT NOT NULL REFERENCES blobs(hash),
        size         INTEGER NOT NULL,
        PRIMARY KEY (snapshot_id, path)
    ) WITHOUT ROWID;
    CREATE INDEX snapshot_files_by_blob ON snapshot_files (blob_hash);

    CREATE TABLE apps (
        sid             TEXT PRIMARY KEY,
        tenant_id       TEXT NOT NULL REFERENCES tenants(id),
        session_id      TEXT NOT NULL UNIQUE REFERENCES sessions(id),
        name            TEXT NOT NULL,
        description     TEXT,
        config          TEXT NOT NULL DEFAULT '{}',
        repository      TEXT,
        active_version  INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX apps_by_tenant ON apps (tenant_id, created_at);
    -- Immutable: a version pins the snapshot it runs from.
    CREATE TABLE app_versions (
        app_sid      TEXT NOT NULL REFERENCES apps(sid),
        version      INTEGER NOT NULL,
        snapshot_id  TEXT NOT NULL REFERENCES snapshots(id),
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (app_sid, version)
    );
    "#,
    // 2: embedded services: pulse events, the ledger's hash chains, idempotency keys.
    r#"
    CREATE TABLE pulse_events (
        id            TEXT PRIMARY KEY,
        tenant_id     TEXT NOT NULL REFERENCES tenants(id),
        name          TEXT NOT NULL,
        service_id    TEXT,
        session_id    TEXT,
        user_id       TEXT,
        source        TEXT,
        -- ISO-8601 UTC with milliseconds: text order is time order.
        timestamp     TEXT NOT NULL,
        meta          TEXT NOT NULL DEFAULT '{}',
        stage_app_id  TEXT,
        author_email  TEXT,
        received_at   INTEGER NOT NULL
    );
    CREATE INDEX pulse_events_by_time ON pulse_events (tenant_id, timestamp);
    CREATE INDEX pulse_events_by_name ON pulse_events (tenant_id, name, timestamp);
    CREATE INDEX pulse_events_by_app ON pulse_events (tenant_id, stage_app_id, timestamp);

    -- One hash chain per tenant; `record` is the canonical JSON that `hash` covers.
    CREATE TABLE ledger_events (
        tenant_id     TEXT NOT NULL REFERENCES tenants(id),
        seq           INTEGER NOT NULL,
        operation     TEXT NOT NULL,
        service_id    TEXT NOT NULL,
        actor         TEXT NOT NULL,
        actor_type    TEXT NOT NULL,
        timestamp     TEXT NOT NULL,
        source        TEXT,
        destination   TEXT,
        data_refs     TEXT NOT NULL,
        status        TEXT NOT NULL,
        meta          TEXT NOT NULL,
        stage_app_id  TEXT,
        author_email  TEXT,
        received_at   INTEGER NOT NULL,
        prev_hash     TEXT NOT NULL,
        hash          TEXT NOT NULL,
        record        TEXT NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    );

    -- The first answer to each Idempotency-Key, per tenant and route.
    CREATE TABLE service_idempotency_keys (
        tenant_id    TEXT NOT NULL REFERENCES tenants(id),
        scope        TEXT NOT NULL,
        key          TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        response     TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, scope, key)
    ) WITHOUT ROWID;
    "#,
    // 3: workflow runs with their steps, and tenants' step plugins.
    r#"
    CREATE TABLE runs (
        id               TEXT PRIMARY KEY,
        tenant_id        TEXT NOT NULL REFERENCES tenants(id),
        app_sid          TEXT NOT NULL REFERENCES apps(sid),
        app_version      INTEGER NOT NULL,
        workflow         TEXT NOT NULL,
        status           TEXT NOT NULL,
        input            TEXT NOT NULL,
        auth             TEXT NOT NULL,
        answer           TEXT,
        error            TEXT,
        idempotency_key  TEXT,
        request_hash     TEXT,
        created_at       INTEGER NOT NULL,
        finished_at      INTEGER
    );
    CREATE UNIQUE INDEX runs_by_idempotency_key ON runs (app_sid, workflow, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX runs_by_app ON runs (app_sid, created_at);
    CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
    CREATE TABLE run_steps (
        run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        idx             INTEGER NOT NULL,
        step_id         TEXT,
        kind            TEXT NOT NULL,
        status          TEXT NOT NULL,
        input           TEXT,
        output          TEXT,
        error_class     TEXT,
        error_message   TEXT,
        attempts        TEXT NOT NULL,
        stdout          TEXT NOT NULL,
        stderr          TEXT NOT NULL,
        log             TEXT NOT NULL,
        instantiate_us  INTEGER NOT NULL,
        execute_us      INTEGER NOT NULL,
        host_us         INTEGER NOT NULL,
        started_at      INTEGER NOT NULL,
        finished_at     INTEGER NOT NULL,
        PRIMARY KEY (run_id, idx)
    );

    CREATE TABLE plugins (
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        kind        TEXT NOT NULL,
        manifest    TEXT NOT NULL,
        hash        TEXT NOT NULL,
        wasm        BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, kind)
    );
    "#,
    // 4: the Sheets emulator's spreadsheets, sheets and cells; apps' Google refresh tokens.
    r#"
    CREATE TABLE sheets_spreadsheets (
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        id          TEXT NOT NULL,
        title       TEXT NOT NULL,
        locale      TEXT NOT NULL,
        time_zone   TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE sheets_sheets (
        tenant_id       TEXT NOT NULL,
        spreadsheet_id  TEXT NOT NULL,
        sheet_id        INTEGER NOT NULL,
        idx             INTEGER NOT NULL,
        title           TEXT NOT NULL,
        row_count       INTEGER NOT NULL,
        column_count    INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, spreadsheet_id, sheet_id),
        FOREIGN KEY (tenant_id, spreadsheet_id) REFERENCES sheets_spreadsheets(tenant_id, id) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE TABLE sheets_cells (
        tenant_id       TEXT NOT NULL,
        spreadsheet_id  TEXT NOT NULL,
        sheet_id        INTEGER NOT NULL,
        row             INTEGER NOT NULL,
        col             INTEGER NOT NULL,
        value           TEXT NOT NULL,
        PRIMARY KEY (tenant_id, spreadsheet_id, sheet_id, row, col)
    ) WITHOUT ROWID;

    CREATE TABLE app_google_credentials (
        app_sid        TEXT PRIMARY KEY REFERENCES apps(sid) ON DELETE CASCADE,
        tenant_id      TEXT NOT NULL REFERENCES tenants(id),
        refresh_token  TEXT NOT NULL,
        client_id      TEXT,
        client_secret  TEXT,
        updated_at     INTEGER NOT NULL
    );
    "#,
    // 5: billing items; communication registrations, messages (the outbox) and attempts.
    r#"
    CREATE TABLE billing_items (
        tenant_id     TEXT NOT NULL REFERENCES tenants(id),
        id            TEXT NOT NULL,
        app_sid       TEXT,
        customer      TEXT NOT NULL,
        amount_cents  INTEGER NOT NULL,
        currency      TEXT NOT NULL,
        description   TEXT,
        quantity      INTEGER NOT NULL,
        metadata      TEXT NOT NULL,
        stripe_id     TEXT,
        created_at    INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, id)
    );
    CREATE INDEX billing_items_by_app ON billing_items (tenant_id, app_sid, created_at);

    CREATE TABLE comm_registrations (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        app_sid     TEXT NOT NULL,
        channel_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        settings    TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (tenant_id, app_sid, channel_id)
    );
    CREATE TABLE comm_messages (
        id               TEXT PRIMARY KEY,
        tenant_id        TEXT NOT NULL REFERENCES tenants(id),
        app_sid          TEXT NOT NULL,
        channel_id       TEXT NOT NULL,
        registration_id  TEXT NOT NULL,
        kind             TEXT NOT NULL,
        recipient        TEXT NOT NULL,
        subject          TEXT,
        text             TEXT NOT NULL,
        html             TEXT,
        metadata         TEXT NOT NULL,
        status           TEXT NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        delivered_at     INTEGER
    );
    CREATE INDEX comm_outbox ON comm_messages (next_attempt_at) WHERE status IN ('queued', 'sending');
    CREATE INDEX comm_messages_by_app ON comm_messages (tenant_id, app_sid, created_at);
    CREATE TABLE comm_attempts (
        message_id   TEXT NOT NULL REFERENCES comm_messages(id) ON DELETE CASCADE,
        attempt      INTEGER NOT NULL,
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        status_code  INTEGER,
        error        TEXT,
        outcome      TEXT NOT NULL,
        PRIMARY KEY (message_id, attempt)
    );
    "#,
    // 6: inference calls of app backends, for per-app usage.
    r#"
    CREATE TABLE inference_calls (
        id                 INTEGER PRIMARY KEY,
        tenant_id          TEXT NOT NULL REFERENCES tenants(id),
        app_sid            TEXT NOT NULL,
        kind               TEXT NOT NULL,
        model              TEXT NOT NULL,
        status             INTEGER NOT NULL,
        prompt_tokens      INTEGER NOT NULL,
        completion_tokens  INTEGER NOT NULL,
        total_tokens       INTEGER NOT NULL,
        created_at         INTEGER NOT NULL
    );
    CREATE INDEX inference_calls_by_app ON inference_calls (tenant_id, app_sid, created_at);
    "#,
    // 7: a run's Idempotency-Key belongs to its caller (an API key's user, an end user, or
    // anonymous): the caller is stored with it and the unique index includes it. Keys
    // recorded before have no caller, so they are never replayed again.
    r#"
    ALTER TABLE runs ADD COLUMN idempotency_scope TEXT;
    DROP INDEX runs_by_idempotency_key;
    CREATE UNIQUE INDEX runs_by_caller_idempotency_key
        ON runs (tenant_id, app_sid, workflow, idempotency_scope, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    "#,
    // 8: the Sheets emulator keeps each sheet's other properties (frozen rows and columns,
    // hidden, tab colour, …) as a JSON object.
    r#"
    ALTER TABLE sheets_sheets ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
    "#,
    // 9: what the Convex `stage` functions keep: the order a session's file versions were
    // written in (`seq`, 1, 2, … per session; versions written before are numbered by time,
    // then path and version), when a session's render state was first made; per session,
    // key-values, live data, messages and end users' Google authorisations; per tenant,
    // Stage secrets (sealed) and preview feedback.
    r#"
    ALTER TABLE file_versions ADD COLUMN seq INTEGER;
    UPDATE file_versions SET seq = ordered.n
    FROM (SELECT session_id, path, version,
                 ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY created_at, path, version) AS n
          FROM file_versions) AS ordered
    WHERE file_versions.session_id = ordered.session_id AND file_versions.path = ordered.path
      AND file_versions.version = ordered.version;
    CREATE INDEX file_versions_by_seq ON file_versions (session_id, seq);

    ALTER TABLE sessions ADD COLUMN render_created_at INTEGER;
    UPDATE sessions SET render_created_at = rendered_at WHERE render_entry IS NOT NULL;

    -- Values are Convex values in their encoded JSON form.
    CREATE TABLE session_kv (
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (session_id, key)
    ) WITHOUT ROWID;
    CREATE TABLE session_live_data (
        session_id  TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
        data        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    -- `seq` keeps the order messages were sent in.
    CREATE TABLE session_messages (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        session_id  TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        text        TEXT NOT NULL,
        sender      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX session_messages_by_session ON session_messages (session_id, seq);
    CREATE TABLE session_user_auth (
        id                         TEXT PRIMARY KEY,
        session_id                 TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        email                      TEXT NOT NULL,
        name                       TEXT NOT NULL,
        picture                    TEXT NOT NULL,
        passport_authorization_id  TEXT NOT NULL,
        scopes                     TEXT NOT NULL,
        status                     TEXT NOT NULL,
        created_at                 INTEGER NOT NULL,
        updated_at                 INTEGER NOT NULL,
        UNIQUE (session_id, email)
    );

    -- `value` is sealed.
    CREATE TABLE tenant_secrets (
        id          TEXT PRIMARY KEY,
        tenant_id   TEXT NOT NULL REFERENCES tenants(id),
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        UNIQUE (tenant_id, key)
    );

    -- `seq` keeps the order feedback was given in; `session_id` is kept as given (feedback
    -- outlives the preview session it was given on).
    CREATE TABLE feedback (
        seq                 INTEGER PRIMARY KEY,
        id                  TEXT NOT NULL UNIQUE,
        tenant_id           TEXT NOT NULL REFERENCES tenants(id),
        sid                 TEXT NOT NULL,
        app_sid             TEXT NOT NULL,
        app_version_sid     TEXT NOT NULL,
        session_id          TEXT,
        studio_session_sid  TEXT,
        author_email        TEXT NOT NULL,
        author_name         TEXT,
        status              TEXT NOT NULL,
        comment             TEXT NOT NULL,
        annotations         TEXT NOT NULL,
        screenshot          TEXT,
        sent_to_studio_at   INTEGER,
        resolved_at         INTEGER,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        UNIQUE (tenant_id, sid)
    );
    CREATE INDEX feedback_by_app ON feedback (tenant_id, app_sid, seq);
    "#,
    // 10: a render's problems as the compiler found them (JSON array of {file, line,
    // column, message}); NULL for renders recorded before.
    r#"
    ALTER TABLE sessions ADD COLUMN render_problems TEXT;
    "#,
    // 11: the entry a version's preview page shows (`/s/:appSid`): the session's render
    // entry when it was published; NULL when the session had no render (the default entry).
    // Versions published before take their session's render entry now.
    r#"
    ALTER TABLE app_versions ADD COLUMN entry TEXT;
    UPDATE app_versions SET entry =
        (SELECT s.render_entry FROM apps a JOIN sessions s ON s.id = a.session_id WHERE a.sid = app_versions.app_sid);
    "#,
    // 12: the stored bytes of each sheet's cells, so that a request knows the size of a
    // spreadsheet without loading it (the emulator bounds it); sheets stored before are
    // measured now.
    r#"
    ALTER TABLE sheets_sheets ADD COLUMN cell_bytes INTEGER NOT NULL DEFAULT 0;
    UPDATE sheets_sheets SET cell_bytes = COALESCE((SELECT SUM(length(c.value)) FROM sheets_cells c
        WHERE c.tenant_id = sheets_sheets.tenant_id AND c.spreadsheet_id = sheets_sheets.spreadsheet_id
          AND c.sheet_id = sheets_sheets.sheet_id), 0);
    "#,
];

/// Brings the database up to the newest schema.
pub(super) fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    anyhow::ensure!(
        current <= MIGRATIONS.len(),
        "the database has schema version {current}, newer than this binary knows ({}); upgrade stage",
        MIGRATIONS.len()
    );
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions written before migration 9 are numbered, per session, in the order they
    /// were written (by time, then path and version).
    #[test]
    fn migration_9_numbers_earlier_versions_in_write_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..8] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 8).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('t', 't', 0);
             INSERT INTO sessions (id, tenant_id, created_at, last_accessed_at) VALUES ('s1', 't', 0, 0), ('s2', 't', 0, 0);
             INSERT INTO file_versions (session_id, path, version, blob_hash, size, created_at) VALUES
               ('s1', '/z', 1, NULL, 0, 10), ('s1', '/a', 1, NULL, 0, 10), ('s1', '/z', 2, NULL, 0, 5),
               ('s2', '/q', 1, NULL, 0, 1);",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let mut stmt =
            conn.prepare("SELECT session_id, path, version, seq FROM file_versions ORDER BY session_id, seq").unwrap();
        let rows: Vec<(String, String, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let expected = [("s1", "/z", 2, 1), ("s1", "/a", 1, 2), ("s1", "/z", 1, 3), ("s2", "/q", 1, 1)];
        let rows: Vec<(&str, &str, i64, i64)> =
            rows.iter().map(|(s, p, v, n)| (s.as_str(), p.as_str(), *v, *n)).collect();
        assert_eq!(rows, expected);
    }

    /// Versions published before migration 11 show their session's render entry of then on
    /// the app's preview page (none when the session was never rendered).
    #[test]
    fn migration_11_gives_earlier_versions_their_sessions_render_entry() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..10] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('t', 't', 0);
             INSERT INTO sessions (id, tenant_id, created_at, last_accessed_at, render_entry)
               VALUES ('s1', 't', 0, 0, '/app/Main.tsx'), ('s2', 't', 0, 0, NULL);
             INSERT INTO snapshots (id, session_id, file_count, created_at) VALUES ('n1', 's1', 0, 0), ('n2', 's2', 0, 0);
             INSERT INTO apps (sid, tenant_id, session_id, name, active_version, created_at, updated_at)
               VALUES ('a1', 't', 's1', 'a', 1, 0, 0), ('a2', 't', 's2', 'b', 1, 0, 0);
             INSERT INTO app_versions (app_sid, version, snapshot_id, created_at) VALUES ('a1', 1, 'n1', 0), ('a2', 1, 'n2', 0);",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let mut stmt = conn.prepare("SELECT app_sid, entry FROM app_versions ORDER BY app_sid").unwrap();
        let rows: Vec<(String, Option<String>)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, [("a1".to_owned(), Some("/app/Main.tsx".to_owned())), ("a2".to_owned(), None)]);
    }

    /// Sheets stored before migration 12 are measured by it.
    #[test]
    fn migration_12_measures_the_cells_of_sheets_stored_before() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..11] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 11).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('t', 't', 0);
             INSERT INTO sheets_spreadsheets VALUES ('t', 's', 'S', 'en_US', 'Etc/GMT', 0);
             INSERT INTO sheets_sheets (tenant_id, spreadsheet_id, sheet_id, idx, title, row_count, column_count)
               VALUES ('t', 's', 0, 0, 'A', 10, 10), ('t', 's', 1, 1, 'B', 10, 10);
             INSERT INTO sheets_cells VALUES ('t', 's', 0, 0, 0, '\"abc\"'), ('t', 's', 0, 1, 0, '12');",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let mut stmt = conn.prepare("SELECT sheet_id, cell_bytes FROM sheets_sheets ORDER BY sheet_id").unwrap();
        let rows: Vec<(i64, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, [(0, 7), (1, 0)]);
    }
}
