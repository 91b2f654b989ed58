//! `dify-crawl`: crawl websites into clean Markdown and keep Dify knowledge
//! bases in step with them.
//!
//! The binary is thin: it parses arguments ([`args`]), merges them with the
//! environment and the config file ([`settings`]), runs a command
//! ([`commands`]) on the libraries, and shows the outcome ([`output`],
//! [`exit`]). All crawling, extraction and syncing lives in the library
//! crates.

mod args;
mod commands;
mod exit;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::exit::Exit;
use crate::output::Verbosity;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = Verbosity::from_flags(cli.global.verbose, cli.global.quiet);
    output::init_logging(verbosity);
    settings::load_dotenv();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            let err = anyhow::Error::new(err).context("starting the async runtime");
            return fail(&err, verbosity);
        }
    };
    match runtime.block_on(commands::run(cli, verbosity)) {
        Ok(exit) => exit.into(),
        Err(err) => fail(&err, verbosity),
    }
}

fn fail(err: &anyhow::Error, verbosity: Verbosity) -> ExitCode {
    let all_causes = matches!(verbosity, Verbosity::Verbose | Verbosity::Trace);
    eprint!("{}", exit::render_error(err, all_causes));
    Exit::Fatal.into()
}
