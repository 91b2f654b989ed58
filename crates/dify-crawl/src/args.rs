//! Command-line arguments.
//!
//! Crawl options are `Option`s: a value given here overrides the config
//! file, which overrides the library default. The defaults shown in `--help`
//! are the libraries' `DEFAULT_*` constants, formatted into the help text so
//! the two cannot drift apart.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use kb_sync::state::DEFAULT_STATE_PATH;

/// The help heading of options every command takes.
const GLOBAL: &str = "Global options";

/// Where the crawl writes Markdown when Dify is not configured and `--out`
/// is not given.
pub const DEFAULT_OUT_DIR: &str = "dify-crawl-out";

/// Crawl websites into clean Markdown and keep Dify knowledge bases in step
/// with them.
///
/// Dify is used when DIFY_BASE_URL and DIFY_API_KEY are set (in the
/// environment, a .env file in the working directory, or the config file);
/// otherwise pages are exported as Markdown files to --out.
#[derive(Debug, Parser)]
#[command(name = "dify-crawl", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file [default: ./dify-crawl.toml when present].
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// State database remembering what was synced.
    #[arg(long, global = true, value_name = "PATH", default_value = DEFAULT_STATE_PATH,
          help_heading = GLOBAL)]
    pub state: PathBuf,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet",
          help_heading = GLOBAL)]
    pub verbose: u8,

    /// Less output: only warnings and errors on stderr, no progress bar (the
    /// summary still goes to stdout).
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Crawl sites and sync their pages to Dify and/or export them to a folder.
    Crawl(Box<CrawlArgs>),
    /// Show what the state database knows: pages per knowledge base by state
    /// and failed pages with their errors.
    Status(StatusArgs),
    /// Re-attempt failed pages without crawling the site: resend stored
    /// content and refetch only the URLs whose fetch failed.
    Retry(RetryArgs),
    /// Check the Dify setup: server reachable, key valid, server version,
    /// target knowledge bases and their indexing technique.
    Doctor(DoctorArgs),
}

/// `dify-crawl crawl`.
#[derive(Debug, Args)]
pub struct CrawlArgs {
    /// Start URLs (http or https).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// File with one start URL per line; blank lines and # comments ignored.
    #[arg(long, value_name = "FILE")]
    pub urls_file: Option<PathBuf>,

    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help = with_default(
              "Fetch at most this many pages, skipped ones included",
              site_crawler::DEFAULT_MAX_PAGES))]
    pub max_pages: Option<u64>,

    #[arg(long, value_name = "N",
          help = with_default(
              "Follow links at most this deep; start and sitemap URLs are depth 0",
               site_crawler::DEFAULT_MAX_DEPTH))]
    pub max_depth: Option<usize>,

    /// Only crawl URLs matching this regex (repeatable; start URLs exempt).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,

    /// Never crawl URLs matching this regex (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,

    /// Stay under the start URLs' folders: from https://host/docs/ (or
    /// /docs/index.html) crawl only /docs/..., like wget's --no-parent.
    #[arg(long)]
    pub no_parent: bool,

    /// Also crawl subdomains of the start URLs' hosts (docs.example.com
    /// from example.com).
    #[arg(long)]
    pub subdomains: bool,

    /// Also crawl this host, e.g. blog.example.com (repeatable).
    #[arg(long, value_name = "HOST")]
    pub allow_host: Vec<String>,

    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help = with_default("Requests in flight across all hosts", site_crawler::DEFAULT_CONCURRENCY))]
    pub concurrency: Option<u64>,

    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..),
          help = with_default("Requests in flight to one host", site_crawler::DEFAULT_PER_HOST))]
    pub per_host: Option<u64>,

    #[arg(long, value_name = "MS",
          help = with_default("Pause between two requests to one host, in milliseconds", site_crawler::DEFAULT_DELAY.as_millis()))]
    pub delay: Option<u64>,

    #[arg(long, value_name = "UA",
          help = with_default("User-Agent header", site_crawler::DEFAULT_USER_AGENT))]
    pub user_agent: Option<String>,

    #[arg(long, value_name = "DIR",
          help = format!("Export pages as Markdown to this folder, also alongside Dify \
                          [default without Dify: {DEFAULT_OUT_DIR}]"))]
    pub out: Option<PathBuf>,

    /// Write a JSON run report to this file.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Do not read sitemaps to find pages.
    #[arg(long)]
    pub no_sitemaps: bool,

    /// Ignore robots.txt. Dangerous: crawls what site owners asked robots to
    /// leave alone, which can get your address blocked; use only on sites
    /// you run.
    #[arg(long)]
    pub ignore_robots: bool,

    /// Send every page to this knowledge base (1-40 characters) instead of
    /// the config's `[[route]]` rules or one knowledge base per host.
    #[arg(long, value_name = "NAME")]
    pub kb: Option<String>,

    /// Plan the Dify writes without sending any (reads still happen; an
    /// --out export is still written).
    #[arg(long)]
    pub dry_run: bool,

    /// Rebuild lost state by listing the knowledge bases' documents first.
    #[arg(long)]
    pub reconcile: bool,

    /// Remove documents (and exported files) whose page is gone.
    #[arg(long)]
    pub prune: bool,

    /// Wait until Dify has indexed the documents written by this run.
    #[arg(long)]
    pub wait: bool,
}

/// `dify-crawl status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the status as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `dify-crawl retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Knowledge base for refetched pages the store has not routed yet
    /// (their first fetch failed); pass what the crawl used. Default: the
    /// config's `[[route]]` rules, else one knowledge base per host.
    #[arg(long, value_name = "NAME")]
    pub kb: Option<String>,

    /// Also export retried pages to this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Write a JSON run report to this file.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Wait until Dify has indexed the documents written.
    #[arg(long)]
    pub wait: bool,
}

/// `dify-crawl doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check this knowledge base (repeatable).
    #[arg(long, value_name = "NAME")]
    pub kb: Vec<String>,
}

/// Help text ending in the `[default: ...]` note clap prints for defaults.
fn with_default(help: &str, default: impl std::fmt::Display) -> String {
    format!("{help} [default: {default}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
