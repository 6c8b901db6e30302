-- Data upgrades that need what SQL cannot see (the seal key): crm runs
-- each in Rust right after the SQL migrations, in one transaction with the
-- row recording it, so each runs once and entirely or not at all. The first
-- is the re-seal of values sealed before sealing bound them to their row
-- (crates/crm-store/src/reseal.rs, docs/design.md §5 "Secrets").
-- Never edit once released.

CREATE TABLE data_upgrades (
    name       TEXT PRIMARY KEY NOT NULL,
    applied_at TEXT NOT NULL,
    detail     TEXT NOT NULL
) STRICT;

-- What every process opening this database must agree on without the
-- database holding it, as in the PostgreSQL adapter: `seal_check` is a
-- fixed label sealed with the seal key of the first open, so a process
-- started with another key is refused (crates/crm-store/src/seal_check.rs).
CREATE TABLE installation (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
