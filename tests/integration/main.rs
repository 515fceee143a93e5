//! Integration tests against the real `conserver` binary, real Redis (for the Redis
//! broker) and the real link components built by `cargo xtask build-links`.
//!
//! Run with `cargo xtask test`. Redis is expected at `CONSERVER_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`); `.ci/run` starts it when it is not running.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod bad_input;
mod broker_round_trips;
mod capabilities;
mod cli;
mod containers;
mod deployment;
mod end_to_end;
mod example_config;
mod exposure;
mod faults;
mod follower;
mod full_disk;
mod import;
mod link_network;
mod link_new;
mod llm_links;
mod outbound_links;
mod poison;
mod redis_json;
mod refused_scripts;
mod reload;
mod sandbox;
mod scitt;
mod script_links;
mod sealed_vcons;
mod secrets_in_logs;
mod serving_limits;
mod standard_links;
mod storages;
mod support;
mod telemetry;
mod tls;
mod tracers;
mod transcription;
