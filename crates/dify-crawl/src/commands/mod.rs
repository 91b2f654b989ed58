//! The subcommands, and the part of running a pipeline they share.

mod crawl;
mod doctor;
mod retry;
mod status;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use kb_sync::pipeline::Pipeline;
use kb_sync::report::{RunOutcome, RunReport};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, Command};
use crate::exit::Exit;
use crate::output::{self, ProgressView, Verbosity};

/// Runs the chosen subcommand.
pub async fn run(cli: Cli, verbosity: Verbosity) -> Result<Exit> {
    match cli.command {
        Command::Crawl(args) => crawl::run(*args, &cli.global, verbosity).await,
        Command::Status(args) => status::run(&args, &cli.global),
        Command::Retry(args) => retry::run(args, &cli.global, verbosity).await,
        Command::Doctor(args) => doctor::run(&args, &cli.global).await,
    }
}

/// Runs `pipeline` with a progress view and Ctrl-C handling, writes the
/// report, prints the summary and picks the exit code.
async fn execute(
    pipeline: Pipeline,
    report_path: Option<&Path>,
    verbosity: Verbosity,
) -> Result<Exit> {
    let view = Arc::new(ProgressView::new(verbosity));
    let cancel = CancellationToken::new();
    crawl::watch_ctrl_c(cancel.clone());
    let result = pipeline.progress(view.clone()).run(cancel).await;
    view.finish();

    let report = match &result {
        Ok(report) => report,
        Err(failure) => &*failure.report,
    };
    if let Some(path) = report_path {
        report
            .write_json(path)
            .with_context(|| format!("writing the run report to {}", path.display()))?;
    }
    print!("{}", output::summary(report));

    match result {
        Ok(report) => Ok(exit_for(&report)),
        Err(failure) => Err(anyhow::Error::new(failure).context("the run stopped")),
    }
}

fn exit_for(report: &RunReport) -> Exit {
    match report.outcome {
        RunOutcome::Cancelled => Exit::Interrupted,
        _ if report.failed_pages() > 0 => Exit::PagesFailed,
        _ => Exit::Success,
    }
}
