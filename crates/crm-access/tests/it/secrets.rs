//! Secrets never reach evidence, the journal or logs.
