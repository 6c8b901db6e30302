//! The storage ports of `crm-domain`, implemented over PostgreSQL. One
//! module per group of ports, mirroring crm-store's; every write of a use
//! case runs in one transaction on one pooled connection (READ COMMITTED,
//! with the row locks or unique keys each write names where concurrent
//! replicas could otherwise interleave).

mod batches;
mod checks;
mod funds;
mod hosts;
mod ops;
mod packs;
mod reconcile;
mod sessions;
