//! The operator commands: they talk to a running server's HTTP API (so they work
//! against any broker, remotely, and go through the same validation and auth as
//! any client), except `link new`, which only writes files, `link test`,
//! which runs a component in this process's sandbox, `migrate`, which
//! converts the documents in Redis itself, and `config schema`, which prints.

mod client;
mod dlq;
mod import;
mod link_new;
#[cfg(feature = "worker")]
mod link_test;
mod migrate;
mod vcon;

use anyhow::Result;
use conserver_config::Settings;

use crate::cli::{Command, ConfigAction, LinkAction};

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
        Command::Link { action: LinkAction::New { name, dir, sdk, lang } } => match link_new::Lang::parse(&lang) {
            Ok(lang) => link_new::run(&name, dir, sdk, lang).map(|dir| {
                println!("created {}; build it with: cd {} && {}", dir.display(), dir.display(), lang.build_hint());
            }),
            Err(error) => Err(error),
        },
        Command::Link { action: test @ LinkAction::Test { .. } } => run_link_test(test, settings).await,
        Command::Migrate { to, concurrency } => migrate::run(settings, to, concurrency).await,
        Command::Config { action: ConfigAction::Schema } => {
            serde_json::to_string_pretty(&conserver_config::config_schema())
                .map(|text| println!("{text}"))
                .map_err(Into::into)
        }
        Command::Serve { .. } | Command::Check { .. } => return None,
    })
}

#[cfg(feature = "worker")]
async fn run_link_test(action: LinkAction, settings: &Settings) -> Result<()> {
    let Some(test) = link_test::LinkTest::from_action(action) else { return Ok(()) };
    if !link_test::run(test, settings).await? {
        anyhow::bail!("at least one call failed (see above)");
    }
    Ok(())
}

#[cfg(not(feature = "worker"))]
async fn run_link_test(_action: LinkAction, _settings: &Settings) -> Result<()> {
    anyhow::bail!("this is the API-only build: `link test` needs the worker build (the `conserver` image)")
}
