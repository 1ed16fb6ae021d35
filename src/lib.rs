//! postlens: a Postfix/Dovecot log monitor and protection appliance.
//!
//! Data flows one way: `ingest` (sources, line reader, formats) → `parse`
//! (zero-copy line meaning) → `track` (bounded queue-ID table → per-recipient
//! deliveries) → `store` (redb: batched writer, readers, retention). The CLI
//! in `cli` wires them together; `web` serves the UI and API over the
//! store's readers, `auth` its accounts; every capacity lives in `limits`.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod dns;
pub(crate) mod hash;
pub mod ingest;
pub mod insights;
pub mod limits;
pub mod notify;
pub mod parse;
pub mod peer;
pub mod protect;
pub mod report;
pub mod settings;
pub mod store;
pub mod track;
pub mod web;
