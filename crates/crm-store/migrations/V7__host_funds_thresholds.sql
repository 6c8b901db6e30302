-- A host's own funds thresholds (JSON crm_domain::funds::HostThresholds:
-- host-wide and per provider), set with `crm host set --low-balance`, over
-- the packs' (issue 20 item 2). NULL means none. Never edit once released.

ALTER TABLE hosts ADD COLUMN funds_thresholds TEXT;
