//! Storage backends whose servers cannot be installed on this machine, each tested
//! through its real client code against a local server that answers the calls the
//! backend makes the way the real server does: Elasticsearch and Milvus (REST) and
//! MongoDB (wire protocol, through the official driver).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

#[path = "../common/mod.rs"]
mod common;
mod elasticsearch;
mod milvus;
mod mongo;
