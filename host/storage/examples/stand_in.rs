//! The storage tests' stand-in servers as a process, for benchmarks of the
//! backends whose real servers cannot be installed here:
//! `stand_in <elasticsearch|milvus|mongo> <port> [embedding dim]`.
//! They answer the calls the backends make as the real servers do, from memory.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)] // shares the tests' modules

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/stand_ins/elasticsearch.rs"]
mod elasticsearch;
#[path = "../tests/stand_ins/milvus.rs"]
mod milvus;
#[path = "../tests/stand_ins/mongo.rs"]
mod mongo;

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: stand_in <elasticsearch|milvus|mongo> <port> [embedding dim]";
    let (kind, port) = match (args.get(1), args.get(2).and_then(|p| p.parse::<u16>().ok())) {
        (Some(kind), Some(port)) => (kind.as_str(), port),
        _ => return Err(usage.into()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    match kind {
        "elasticsearch" => drop(elasticsearch::serve(listener).await),
        "milvus" => drop(milvus::serve(listener, args.get(3).and_then(|d| d.parse().ok()).unwrap_or(1536)).await),
        "mongo" => drop(mongo::serve(listener).await),
        _ => return Err(usage.into()),
    }
    eprintln!("stand-in {kind} listening on 127.0.0.1:{port}");
    std::future::pending::<()>().await;
    Ok(())
}
