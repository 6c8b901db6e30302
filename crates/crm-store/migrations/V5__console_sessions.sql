-- Console sign-in sessions (issue 22): in the database rather than in one
-- process's memory, so a browser stays signed in whichever process answers
-- and a logout anywhere ends the session everywhere. Only the SHA-256 of
-- the cookie's random id is kept: reading the database does not sign
-- anyone in. Never edit once released.

CREATE TABLE console_sessions (
    id_digest  TEXT PRIMARY KEY NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'read_only')),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Expired sessions are forgotten at every sign-in.
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
