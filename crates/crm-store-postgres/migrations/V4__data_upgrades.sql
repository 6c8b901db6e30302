-- Data upgrades that need what SQL cannot see (the seal key), as in the
-- SQLite adapter's V6: crm runs each in Rust right after the SQL
-- migrations, under the migration lock, in one transaction with the row
-- recording it, so each runs once and entirely or not at all. The first is
-- the re-seal of values sealed before sealing bound them to their row
-- (crm-store's src/reseal.rs, docs/design.md §5 "Secrets").
-- Never edit once released.

CREATE TABLE data_upgrades (
    name       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    applied_at TEXT COLLATE "C" NOT NULL,
    detail     TEXT NOT NULL
);
