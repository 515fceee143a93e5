//! The processing side of conserver.
//!
//! A [`Snapshot`] is the config made executable: every chain with its links loaded
//! into the wasm runtime, its storages built, keyed by ingress list. [`Workers`]
//! run a dispatcher that reliably pops uuids (ingress list → processing list) while
//! concurrency allows, and a task per vCon that runs [`process_vcon`]:
//!
//! load the vCon once (the pop reads it where the broker can) → run the links in
//! memory → storages → the wrap-up: write-back, egress lists, routes links asked
//! for, TTLs and the ack, as one broker operation.
//!
//! The pipeline calls links and tracers through [`LinkRunner`] and
//! [`TraceRunner`], so its rules are tested without any wasm component.
//!
//! A link error or limit breach, or a storage failure, dead-letters the uuid to
//! `DLQ:{ingress}` with a reason naming the step and cause; the worker goes on.

mod broker_failures;
mod chain_run;
mod error;
mod link_cache;
mod plan;
mod process;
mod runner;
mod spans;
pub mod spec_form;
mod storages;
mod worker;
mod wrap_up;

pub use error::PipelineError;
pub use link_cache::BrokerLinkCache;
pub use plan::{ChainPlan, LinkStep, Snapshot, TracerStep, resolve_component};
pub use process::Outcome;
pub use process::{Failure, ProcessOptions, process_vcon};
pub use runner::{LinkRunner, TraceRunner};
pub use worker::{WorkerSettings, Workers, worker_id};
