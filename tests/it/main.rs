//! Cross-binary suites: what the three faces do together over one database
//! (docs/ARCHITECTURE.md, "Tests and their doubles").

mod faces;
