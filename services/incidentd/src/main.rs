//! `incidentd`: parse flags, validate config, set up tracing, run until
//! SIGTERM/SIGINT. Everything else lives in the library.

use clap::Parser;
use incidentd::{Cli, Cmd};
use std::process::ExitCode;

/// mimalloc instead of glibc malloc: the server allocates many small,
/// short-lived buffers per request (protobuf, JSON, events); glibc's
/// allocator took ~20 % of the CPU samples under the org load harness.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.cmd {
        Some(Cmd::DemoConfig) => {
            print!("{}", incidentd_config::DEMO_TOML);
            return ExitCode::SUCCESS;
        }
        Some(Cmd::Backup { dest }) => return backup(&cli.data_dir, dest),
        Some(Cmd::Serve) | None => {}
    }
    // Config errors are reported before anything binds a port.
    let org = match incidentd::load_org(cli.config.as_deref()) {
        Ok(org) => org,
        Err(e) => {
            eprintln!("incidentd: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut opts = cli.options();
    opts.scenarios = match incidentd::scenarios::load(cli.scenarios.as_deref()) {
        Ok(s) => s,
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
    let result = runtime.block_on(incidentd::run(opts, org, incidentd::shutdown_signal()));
    // The final OTLP export needs the runtime (the exporter's channel runs on
    // it), and the provider's shutdown blocks: run it on a blocking thread
    // before the runtime goes.
    let flushed = runtime.block_on(async { tokio::task::spawn_blocking(move || telemetry.shutdown()).await });
    if flushed.is_err() {
        eprintln!("incidentd: flushing traces failed");
    }
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incidentd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `incidentd backup DEST`: needs no config and takes no lock.
fn backup(data_dir: &std::path::Path, dest: &std::path::Path) -> ExitCode {
    match incidentd_store::backup::backup(data_dir, dest) {
        Ok(r) => {
            println!(
                "incidentd backup: {} records ({} bytes) of {} copied to {}",
                r.records,
                r.bytes,
                data_dir.display(),
                r.log.display()
            );
            println!(
                "restore: incidentd --data-dir {} (indexes are rebuilt from the log)",
                dest.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("incidentd backup: {e}");
            ExitCode::FAILURE
        }
    }
}
