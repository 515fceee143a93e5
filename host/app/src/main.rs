//! `conserver`: parse the command line, set up logging, run, map the outcome to an
//! exit code. Everything else lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before anything reads the environment (the command line's defaults and
    // LOG_LEVEL included), and while this is the only thread.
    let dotenv = match conserver::dotenv::load() {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("conserver: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Several TLS crypto providers are linked in (through different clients);
    // rustls must be told which one serves the clients that ask for the default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = conserver::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("conserver: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The gRPC exporter's channel needs the runtime's context; the exporters
    // are flushed after the run, outside async code, while the runtime lives.
    let telemetry = {
        let _context = runtime.enter();
        conserver::telemetry::init()
    };
    if let Some(loaded) = dotenv {
        tracing::info!(file = %loaded.path.display(), variables = ?loaded.set, "read .env (the environment wins over it)");
    }
    let result = runtime.block_on(conserver::run(cli));
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("conserver: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
