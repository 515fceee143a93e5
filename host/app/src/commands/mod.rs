//! The operator commands: they talk to a running server's HTTP API (so they work
//! against any broker, remotely, and go through the same validation and auth as
//! any client), except `link new`, which only writes files.

mod client;
mod dlq;
mod import;
mod link_new;
mod vcon;

use anyhow::Result;
use conserver_config::Settings;

use crate::cli::{Command, LinkAction};

pub use import::vcon_files;

/// Run an operator command (`None` when `command` is not one).
pub async fn run(command: Command, settings: &Settings) -> Option<Result<()>> {
    Some(match command {
        Command::Dlq { action, server } => match client::ApiClient::new(&server, settings) {
            Ok(client) => dlq::run(&client, action).await,
            Err(error) => Err(error),
        },
        Command::Vcon { action, server } => match client::ApiClient::new(&server, settings) {
            Ok(client) => vcon::run(&client, action).await,
            Err(error) => Err(error),
        },
        Command::Import { dir, ingress_list, concurrency, server } => match client::ApiClient::new(&server, settings) {
            Ok(client) => import::run(&client, &dir, &ingress_list, concurrency).await,
            Err(error) => Err(error),
        },
        Command::Link { action: LinkAction::New { name, dir, sdk } } => link_new::run(&name, dir, sdk).map(|dir| {
            println!("created {}; build it with: cd {} && cargo build --release", dir.display(), dir.display());
        }),
        Command::Serve { .. } | Command::Check { .. } => return None,
    })
}
