//! `crm-tests`: the workspace's cross-binary test suites (see `it/`). The
//! library is empty; the suites run the real `crm`, `crm-server` and
//! `crm-acceptance` binaries, built by `crm_reliability::bins`.
