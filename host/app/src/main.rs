//! `conserver`: parse the command line, set up logging, run, map the outcome to an
//! exit code. Everything else lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
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
