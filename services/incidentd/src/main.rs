//! `incidentd`: parse flags, validate config, set up tracing, run until
//! SIGTERM/SIGINT. Everything else lives in the library.

use clap::Parser;
use incidentd::{Cli, Cmd};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::DemoConfig) = cli.cmd {
        print!("{}", incidentd_config::DEMO_TOML);
        return ExitCode::SUCCESS;
    }
    // Config errors are reported before anything binds a port.
    let org = match incidentd::load_org(cli.config.as_deref()) {
        Ok(org) => org,
        Err(e) => {
            eprintln!("incidentd: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("incidentd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = runtime.block_on(async { incidentd::telemetry::init() });
    let result = runtime.block_on(incidentd::run(cli.options(), org, incidentd::shutdown_signal()));
    // The OTLP provider's shutdown blocks; do it off the runtime.
    drop(runtime);
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incidentd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
