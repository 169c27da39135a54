//! `incidentctl`: the responder's command line over incidentd's gRPC API.
//! Parse flags (clap exits 2 on a usage error), settle the settings, run one
//! command, and turn any failure into one line on stderr and an exit code:
//! 0 ok, 1 the server said no, 2 usage, 3 unreachable.

mod cli;
mod client;
mod commands;
mod fail;
mod json;
mod prompt;
mod render;
mod settings;
mod when;

use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd, ColorChoice};
use fail::{EXIT_UNREACHABLE, Failure};
use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "incidentctl", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Cmd::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(Failure::usage(format!("cannot write the man page: {e}"))),
            };
        }
        _ => {}
    }
    let file = match settings::load_file(cli.global.config.as_deref()) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let style = render::Style {
        on: match cli.global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        },
    };
    let ctx = commands::Ctx {
        settings: settings::resolve(&cli.global, file),
        out: commands::Out {
            json: cli.global.json,
            style,
        },
        request_id: cli.global.request_id.clone(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            return fail(Failure::unreachable(
                &ctx.settings.addr,
                format!("cannot start the runtime: {e}"),
            ));
        }
    };
    match runtime.block_on(commands::run(cli.cmd, ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(f: Failure) -> ExitCode {
    eprintln!("incidentctl: {}", f.message);
    ExitCode::from(if f.exit == 0 { EXIT_UNREACHABLE } else { f.exit })
}
