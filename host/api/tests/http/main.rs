//! HTTP-level tests of every route, through the real router (no socket), on both
//! broker backends: the embedded SQLite broker in a temp directory and Redis at
//! `CONSERVER_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod admin;
mod auth;
mod fixtures;
mod fuzz;
mod http_rules;
mod queues;
mod security;
mod support;
mod vcons;
