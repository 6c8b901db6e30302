-- crm-store-postgres schema, first release. Never edit this file once
-- released: add a new V<n>__*.sql instead. This folder is the PostgreSQL
-- twin of crates/crm-store/migrations (SQLite); the two are kept apart
-- because their SQL does not port (types, ALTER TABLE, JSON functions), and
-- each has its own history table. V1 here is SQLite's V1 and V2 together.
--
-- Conventions, the same as the SQLite adapter's so both read and write the
-- same records: times are UTC RFC 3339 text with nine fractional digits
-- (fixed width, so text order is time order; timestamptz would keep only
-- microseconds and records must read back equal to what was written);
-- vocabularies are the design brief's words; nested records are JSON text.
-- Every text column is COLLATE "C": bytewise order, as in SQLite, so time
-- comparisons, `ORDER BY name` and the intent-key range search agree with
-- the other adapter whatever locale the cluster was created with.
-- No column ever holds a secret in clear: keys appear only as keyed
-- fingerprints, host admin keys only sealed.

CREATE TABLE packs (
    pack_id      TEXT COLLATE "C" NOT NULL,
    version      TEXT COLLATE "C" NOT NULL,
    checksum     TEXT COLLATE "C" NOT NULL,
    manifest     TEXT NOT NULL,           -- JSON PackManifest
    origin       TEXT COLLATE "C" NOT NULL,
    current      BOOLEAN NOT NULL DEFAULT FALSE,
    installed_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pack_id, version)
);

-- At most one current version per pack.
CREATE UNIQUE INDEX packs_current ON packs (pack_id) WHERE current;

CREATE TABLE hosts (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name                 TEXT COLLATE "C" NOT NULL UNIQUE,
    base_url             TEXT COLLATE "C" NOT NULL,
    admin_credential     TEXT NOT NULL,   -- JSON CredentialRef (env, file or sealed)
    capabilities         TEXT,            -- JSON Capabilities of the last probe
    reconcile_every_secs BIGINT,
    created_at           TEXT COLLATE "C" NOT NULL,
    probed_at            TEXT COLLATE "C",
    host_version         TEXT COLLATE "C"
);

CREATE TABLE batches (
    id             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    host_id        TEXT COLLATE "C" NOT NULL REFERENCES hosts (id),
    pack_id        TEXT COLLATE "C" NOT NULL,
    provider_key   TEXT COLLATE "C" NOT NULL,
    mode           TEXT COLLATE "C" NOT NULL,
    pack_version   TEXT COLLATE "C" NOT NULL,
    pack_checksum  TEXT COLLATE "C" NOT NULL,
    status         TEXT COLLATE "C" NOT NULL,
    status_reason  TEXT,
    access_status  TEXT COLLATE "C" NOT NULL,
    plan           TEXT NOT NULL,         -- JSON Plan
    upstream_keys  TEXT NOT NULL,         -- JSON [Fingerprint]
    created_at     TEXT COLLATE "C" NOT NULL,
    updated_at     TEXT COLLATE "C" NOT NULL
);

CREATE INDEX batches_by_host     ON batches (host_id, created_at);
CREATE INDEX batches_by_provider ON batches (pack_id, provider_key, created_at);
CREATE INDEX batches_by_status   ON batches (status, created_at);
CREATE INDEX batches_by_created  ON batches (created_at, id);

-- The write-ahead journal: an intent is committed before its host call.
CREATE TABLE journal (
    batch_id       TEXT COLLATE "C" NOT NULL REFERENCES batches (id),
    seq            BIGINT NOT NULL CHECK (seq >= 1),
    intent_key     TEXT COLLATE "C" NOT NULL UNIQUE,
    op             TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL,
    natural_key    TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    host_object_id BIGINT,
    spec_digest    TEXT COLLATE "C" NOT NULL,
    desired        TEXT NOT NULL,         -- JSON desired spec (no secrets)
    state          TEXT COLLATE "C" NOT NULL,
    detail         TEXT,
    created_at     TEXT COLLATE "C" NOT NULL,
    resolved_at    TEXT COLLATE "C",
    PRIMARY KEY (batch_id, seq)
);

-- Crash recovery reads every pending intent.
CREATE INDEX journal_pending ON journal (batch_id, seq) WHERE state = 'pending';

CREATE TABLE managed_resources (
    batch_id       TEXT COLLATE "C" NOT NULL REFERENCES batches (id),
    kind           TEXT COLLATE "C" NOT NULL,
    host_object_id BIGINT NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    natural_key    TEXT COLLATE "C" NOT NULL,
    origin         TEXT COLLATE "C" NOT NULL,   -- journal op: create or adopt
    spec_digest    TEXT COLLATE "C" NOT NULL,
    desired        TEXT NOT NULL,               -- JSON desired spec (no secrets)
    state          TEXT COLLATE "C" NOT NULL,
    journal_seq    BIGINT NOT NULL,
    updated_at     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (batch_id, kind, host_object_id),
    FOREIGN KEY (batch_id, journal_seq) REFERENCES journal (batch_id, seq)
);

CREATE INDEX resources_in_journal_order ON managed_resources (batch_id, journal_seq);
CREATE INDEX resources_by_host_object   ON managed_resources (kind, host_object_id);

CREATE TABLE access_checks (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    batch_id      TEXT COLLATE "C" NOT NULL REFERENCES batches (id),
    mode          TEXT COLLATE "C" NOT NULL,
    checked_at    TEXT COLLATE "C" NOT NULL,
    verdict       TEXT COLLATE "C" NOT NULL,
    failure_class TEXT COLLATE "C",
    summary       TEXT NOT NULL,
    steps         TEXT NOT NULL           -- JSON [CheckStep], redacted evidence
);

CREATE INDEX access_checks_by_batch ON access_checks (batch_id, checked_at);

CREATE TABLE reconcile_runs (
    id            TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    host_id       TEXT COLLATE "C" NOT NULL,
    batch_id      TEXT COLLATE "C",
    provider      TEXT COLLATE "C",       -- pack/provider for provider-scoped runs
    status        TEXT COLLATE "C" NOT NULL,
    started_at    TEXT COLLATE "C" NOT NULL,
    finished_at   TEXT COLLATE "C" NOT NULL,
    host_requests BIGINT NOT NULL,
    repaired      BOOLEAN NOT NULL,
    error         TEXT
);

CREATE INDEX reconcile_runs_by_host  ON reconcile_runs (host_id, started_at);
CREATE INDEX reconcile_runs_by_batch ON reconcile_runs (batch_id, started_at) WHERE batch_id IS NOT NULL;

CREATE TABLE drift_items (
    run_id         TEXT COLLATE "C" NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
    position       BIGINT NOT NULL,
    category       TEXT COLLATE "C" NOT NULL,
    kind           TEXT COLLATE "C" NOT NULL,
    name           TEXT COLLATE "C" NOT NULL,
    host_object_id BIGINT,
    batch_id       TEXT COLLATE "C",
    fields         TEXT NOT NULL,         -- JSON [FieldChange]
    detail         TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);

CREATE TABLE operations (
    id              TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    target          TEXT COLLATE "C" NOT NULL,
    request         TEXT NOT NULL,        -- JSON
    progress        TEXT NOT NULL,        -- JSON [String]
    result          TEXT,                 -- JSON
    error           TEXT,
    idempotency_key TEXT COLLATE "C",
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX operations_unfinished ON operations (created_at) WHERE status IN ('queued', 'running');

CREATE TABLE idempotency_keys (
    principal        TEXT COLLATE "C" NOT NULL,
    key              TEXT COLLATE "C" NOT NULL,
    route            TEXT COLLATE "C" NOT NULL,
    body_hash        TEXT COLLATE "C" NOT NULL,
    response_status  BIGINT,              -- NULL while the first request executes
    response_headers TEXT,                -- JSON [[name, value]]
    response_body    BYTEA,
    created_at       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- One row per held scope. Replicas race for a scope on this unique key.
CREATE TABLE leases (
    id           TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    scope        TEXT COLLATE "C" NOT NULL UNIQUE,
    holder       TEXT NOT NULL,
    operation    TEXT NOT NULL,
    acquired_at  TEXT COLLATE "C" NOT NULL,
    heartbeat_at TEXT COLLATE "C" NOT NULL,
    expires_at   TEXT COLLATE "C" NOT NULL
);

CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TEXT COLLATE "C" NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT COLLATE "C" NOT NULL,
    target     TEXT NOT NULL,
    request_id TEXT,
    outcome    TEXT COLLATE "C" NOT NULL,
    detail     TEXT
);

-- What every replica must agree on without the database holding it: a
-- keyed check value of the fingerprint pepper (never the pepper), so a
-- replica started with another pepper file is refused instead of computing
-- fingerprints that match nothing.
CREATE TABLE installation (
    name  TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
