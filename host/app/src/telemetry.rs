//! Logging: `LOG_LEVEL` (an env-filter directive, default `info`) and
//! `LOG_FORMAT=json|text` (default text).

use tracing_subscriber::EnvFilter;

/// Install the global subscriber.
pub fn init() {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(level.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    if let Err(error) = result {
        eprintln!("conserver: logging already initialised: {error}");
    }
}
