-- Funds and quota readings of upstream keys (issue 20), as in the SQLite
-- adapter's V4: the host account holding the key (never the key), the
-- source (`host` or `upstream`), the time, and the value as JSON.
-- Never edit once released.

CREATE TABLE funds_readings (
    id           BIGSERIAL PRIMARY KEY,
    host_id      TEXT COLLATE "C" NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    batch_id     TEXT COLLATE "C",
    provider     TEXT COLLATE "C" NOT NULL,
    account_id   BIGINT NOT NULL,
    account_name TEXT NOT NULL,
    source       TEXT COLLATE "C" NOT NULL CHECK (source IN ('host', 'upstream')),
    kind         TEXT COLLATE "C" NOT NULL CHECK (kind IN ('balance', 'quota')),
    state        TEXT COLLATE "C" NOT NULL CHECK (state IN ('ok', 'unsupported', 'unknown')),
    taken_at     TEXT COLLATE "C" NOT NULL,
    value        TEXT NOT NULL
);

CREATE INDEX funds_readings_latest
    ON funds_readings (host_id, account_id, kind, source, taken_at DESC, id DESC);

-- Why an `unhealthy` drift item was raised (`low_funds`, `low_quota`).
ALTER TABLE drift_items ADD COLUMN reason TEXT COLLATE "C";
