-- crm-store schema, first release. Never edit this file once released:
-- add a new V<n>__*.sql instead.
--
-- Conventions: times are UTC RFC 3339 text with nine fractional digits
-- (fixed width, so text order is time order); vocabularies are stored as the
-- design brief's words; nested records are JSON text. No column ever holds a
-- secret in clear: keys appear only as keyed fingerprints, host admin keys
-- only sealed.

CREATE TABLE packs (
    pack_id      TEXT NOT NULL,
    version      TEXT NOT NULL,
    checksum     TEXT NOT NULL,
    manifest     TEXT NOT NULL,           -- JSON PackManifest
    origin       TEXT NOT NULL,
    current      INTEGER NOT NULL DEFAULT 0 CHECK (current IN (0, 1)),
    installed_at TEXT NOT NULL,
    PRIMARY KEY (pack_id, version)
) STRICT;

-- At most one current version per pack.
CREATE UNIQUE INDEX packs_current ON packs (pack_id) WHERE current = 1;

CREATE TABLE hosts (
    id                   TEXT PRIMARY KEY NOT NULL,
    name                 TEXT NOT NULL UNIQUE,
    base_url             TEXT NOT NULL,
    admin_credential     TEXT NOT NULL,   -- JSON CredentialRef (env, file or sealed)
    capabilities         TEXT,            -- JSON Capabilities of the last probe
    reconcile_every_secs INTEGER,
    created_at           TEXT NOT NULL
) STRICT;

CREATE TABLE batches (
    id             TEXT PRIMARY KEY NOT NULL,
    host_id        TEXT NOT NULL REFERENCES hosts (id),
    pack_id        TEXT NOT NULL,
    provider_key   TEXT NOT NULL,
    mode           TEXT NOT NULL,
    pack_version   TEXT NOT NULL,
    pack_checksum  TEXT NOT NULL,
    status         TEXT NOT NULL,
    status_reason  TEXT,
    access_status  TEXT NOT NULL,
    plan           TEXT NOT NULL,         -- JSON Plan
    upstream_keys  TEXT NOT NULL,         -- JSON [Fingerprint]
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

CREATE INDEX batches_by_host     ON batches (host_id, created_at);
CREATE INDEX batches_by_provider ON batches (pack_id, provider_key, created_at);
CREATE INDEX batches_by_status   ON batches (status, created_at);

-- The write-ahead journal: an intent is committed before its host call.
CREATE TABLE journal (
    batch_id       TEXT NOT NULL REFERENCES batches (id),
    seq            INTEGER NOT NULL CHECK (seq >= 1),
    intent_key     TEXT NOT NULL UNIQUE,
    op             TEXT NOT NULL,
    kind           TEXT NOT NULL,
    natural_key    TEXT NOT NULL,
    name           TEXT NOT NULL,
    host_object_id INTEGER,
    spec_digest    TEXT NOT NULL,
    desired        TEXT NOT NULL,         -- JSON desired spec (no secrets)
    state          TEXT NOT NULL,
    detail         TEXT,
    created_at     TEXT NOT NULL,
    resolved_at    TEXT,
    PRIMARY KEY (batch_id, seq)
) STRICT;

-- Crash recovery reads every pending intent.
CREATE INDEX journal_pending ON journal (batch_id, seq) WHERE state = 'pending';

CREATE TABLE managed_resources (
    batch_id       TEXT NOT NULL REFERENCES batches (id),
    kind           TEXT NOT NULL,
    host_object_id INTEGER NOT NULL,
    name           TEXT NOT NULL,
    natural_key    TEXT NOT NULL,
    origin         TEXT NOT NULL,         -- journal op: create or adopt
    spec_digest    TEXT NOT NULL,
    desired        TEXT NOT NULL,         -- JSON desired spec (no secrets)
    state          TEXT NOT NULL,
    journal_seq    INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (batch_id, kind, host_object_id),
    FOREIGN KEY (batch_id, journal_seq) REFERENCES journal (batch_id, seq)
) STRICT;

CREATE INDEX resources_in_journal_order ON managed_resources (batch_id, journal_seq);
CREATE INDEX resources_by_host_object   ON managed_resources (kind, host_object_id);

CREATE TABLE access_checks (
    id            TEXT PRIMARY KEY NOT NULL,
    batch_id      TEXT NOT NULL REFERENCES batches (id),
    mode          TEXT NOT NULL,
    checked_at    TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    failure_class TEXT,
    summary       TEXT NOT NULL,
    steps         TEXT NOT NULL           -- JSON [CheckStep], redacted evidence
) STRICT;

CREATE INDEX access_checks_by_batch ON access_checks (batch_id, checked_at);

CREATE TABLE reconcile_runs (
    id            TEXT PRIMARY KEY NOT NULL,
    host_id       TEXT NOT NULL,
    batch_id      TEXT,
    provider      TEXT,                   -- pack/provider for provider-scoped runs
    status        TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL,
    host_requests INTEGER NOT NULL,
    repaired      INTEGER NOT NULL CHECK (repaired IN (0, 1)),
    error         TEXT
) STRICT;

CREATE INDEX reconcile_runs_by_host  ON reconcile_runs (host_id, started_at);
CREATE INDEX reconcile_runs_by_batch ON reconcile_runs (batch_id, started_at) WHERE batch_id IS NOT NULL;

CREATE TABLE drift_items (
    run_id         TEXT NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    category       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    host_object_id INTEGER,
    batch_id       TEXT,
    fields         TEXT NOT NULL,         -- JSON [FieldChange]
    detail         TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
) STRICT;

CREATE TABLE operations (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    target          TEXT NOT NULL,
    request         TEXT NOT NULL,        -- JSON
    progress        TEXT NOT NULL,        -- JSON [String]
    result          TEXT,                 -- JSON
    error           TEXT,
    idempotency_key TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE INDEX operations_unfinished ON operations (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE idempotency_keys (
    principal        TEXT NOT NULL,
    key              TEXT NOT NULL,
    route            TEXT NOT NULL,
    body_hash        TEXT NOT NULL,
    response_status  INTEGER,             -- NULL while the first request executes
    response_headers TEXT,                -- JSON [[name, value]]
    response_body    BLOB,
    created_at       TEXT NOT NULL,
    PRIMARY KEY (principal, key)
) STRICT;

CREATE TABLE leases (
    id           TEXT PRIMARY KEY NOT NULL,
    scope        TEXT NOT NULL UNIQUE,
    holder       TEXT NOT NULL,
    operation    TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    request_id TEXT,
    outcome    TEXT NOT NULL,
    detail     TEXT
) STRICT;
