//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// vCon conserver: ingest vCons over HTTP or queues and run them through chains of
/// sandboxed WebAssembly links.
#[derive(Debug, Parser)]
#[command(name = "conserver", version)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and run the workers (the default).
    Serve {
        /// Address to listen on (default from CONSERVER_BIND, else 0.0.0.0:8000).
        #[arg(long)]
        bind: Option<String>,
        /// Config file (default from CONSERVER_CONFIG_FILE, else ./config.yml, else
        /// ./config.example.yml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and load every component it names, without serving.
    Check {
        /// The config file.
        config: PathBuf,
    },
}
