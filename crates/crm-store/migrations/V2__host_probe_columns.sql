-- Probe time and host version as plain columns, so operators (and `list
-- hosts`-style SQL) can see when each host was last probed and what it runs
-- without parsing the capabilities JSON. Backfilled from hosts probed before
-- this migration. Never edit once released.

ALTER TABLE hosts ADD COLUMN probed_at TEXT;
ALTER TABLE hosts ADD COLUMN host_version TEXT;

UPDATE hosts
SET probed_at    = json_extract(capabilities, '$.probed_at'),
    host_version = json_extract(capabilities, '$.version')
WHERE capabilities IS NOT NULL;

-- Purging old idempotency keys scans by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
