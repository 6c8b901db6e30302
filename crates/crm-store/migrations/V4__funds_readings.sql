-- Funds and quota readings of upstream keys (issue 20). One row per
-- reading: the host account that holds the key (never the key), where the
-- reading came from (`host` = the host's cn-providers routes, `upstream` =
-- the provider's own balance API with a key the operator supplied for that
-- run) and when. Amounts keep the provider's currency inside `value`.
-- Never edit once released.

CREATE TABLE funds_readings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id     TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    batch_id    TEXT,
    provider    TEXT NOT NULL,
    account_id  INTEGER NOT NULL,
    account_name TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('host', 'upstream')),
    kind        TEXT NOT NULL CHECK (kind IN ('balance', 'quota')),
    state       TEXT NOT NULL CHECK (state IN ('ok', 'unsupported', 'unknown')),
    taken_at    TEXT NOT NULL,
    -- The reading's value (balances, availability, quota windows, detail) as JSON.
    value       TEXT NOT NULL
);

-- "The newest reading of each account on a host" walks this index.
CREATE INDEX funds_readings_latest
    ON funds_readings (host_id, account_id, kind, source, taken_at DESC, id DESC);

-- Why an `unhealthy` drift item was raised (`low_funds`, `low_quota`).
ALTER TABLE drift_items ADD COLUMN reason TEXT;
