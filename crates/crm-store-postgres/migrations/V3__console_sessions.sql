-- Console sign-in sessions (issue 22), as in the SQLite adapter's V5: one
-- row per signed-in browser, keyed by the SHA-256 of the cookie's random
-- id (never the id), so every replica knows every session and a logout on
-- one replica ends it on all. Never edit once released.

CREATE TABLE console_sessions (
    id_digest  TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    role       TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin', 'read_only')),
    created_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL
);

CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
