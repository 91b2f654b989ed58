//! Turning flags, environment and config file into one [`Config`].
//!
//! Precedence, highest first: command-line flags, environment variables
//! (including a `.env` file in the working directory, which never overrides
//! variables already set), the config file, the libraries' defaults. Flags
//! are laid over the file's `Option` fields here; the mapping from there to
//! library options lives in `kb_sync::config`, in one place.

use std::path::Path;

use anyhow::{Context, Result};
use dify_client::DifyClient;
use kb_sync::config::{Config, DifyConnection, ENV_API_KEY, ENV_BASE_URL};

use crate::args::{CrawlArgs, GlobalArgs};
use crate::exit::UsageError;

/// Loads `.env` from the working directory when there is one. Variables
/// already set in the environment win, so a shell export overrides the file.
pub fn load_dotenv() {
    match dotenvy::dotenv() {
        Ok(path) => tracing::debug!(path = %path.display(), "loaded .env"),
        Err(err) if err.not_found() => {}
        Err(err) => tracing::warn!(error = %err, "ignoring unreadable .env file"),
    }
}

/// The config file named by `--config`, else `dify-crawl.toml` when present,
/// else defaults; validated.
pub fn load_config(global: &GlobalArgs) -> Result<Config> {
    let config = Config::discover(global.config.as_deref()).context("loading the configuration")?;
    config.validate().context("checking the configuration")?;
    Ok(config)
}

/// Lays the crawl flags over the config file's values.
pub fn apply_crawl_args(config: &mut Config, args: &CrawlArgs) {
    let crawl = &mut config.crawl;
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    crawl.max_pages = args.max_pages.map(as_usize).or(crawl.max_pages);
    crawl.max_depth = args.max_depth.or(crawl.max_depth);
    crawl.concurrency = args.concurrency.map(as_usize).or(crawl.concurrency);
    crawl.per_host = args.per_host.map(as_usize).or(crawl.per_host);
    crawl.delay_ms = args.delay.or(crawl.delay_ms);
    crawl.user_agent = args.user_agent.clone().or(crawl.user_agent.take());
    crawl.include.extend(args.include.iter().cloned());
    crawl.exclude.extend(args.exclude.iter().cloned());
    crawl.extra_hosts.extend(args.allow_host.iter().cloned());
    if args.no_parent {
        crawl.no_parent = Some(true);
    }
    if args.subdomains {
        crawl.allow_subdomains = Some(true);
    }
    if args.no_sitemaps {
        crawl.sitemaps = Some(false);
    }
    if args.ignore_robots {
        crawl.respect_robots = Some(false);
    }
    if args.wait {
        config.dify.wait_for_indexing = Some(true);
    }
}

/// Start URLs from the arguments and `--urls-file`. The config file's
/// `[crawl].urls` are added later by the crawl configuration; all three
/// empty is a usage error.
pub fn start_urls(args: &CrawlArgs, config: &Config) -> Result<Vec<String>> {
    let mut urls = args.urls.clone();
    if let Some(path) = &args.urls_file {
        urls.extend(read_urls_file(path)?);
    }
    if urls.is_empty() && config.crawl.urls.is_empty() {
        return Err(UsageError {
            message: "no start URL given".into(),
            hint: "usage: dify-crawl crawl [OPTIONS] <URL>... (or --urls-file FILE, or \
                   [crawl].urls in the config file)"
                .into(),
        }
        .into());
    }
    Ok(urls)
}

/// One URL per line; blank lines and `#` comments (whole-line or trailing)
/// are ignored.
fn read_urls_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the URL list {}", path.display()))?;
    Ok(parse_urls(&text))
}

fn parse_urls(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The Dify connection when both halves are configured, `None` when
/// neither is (export only).
///
/// # Errors
///
/// A [`UsageError`] when only one of base URL and key is set: a run that
/// silently exported instead of syncing would look like success.
pub fn dify_connection(config: &Config) -> Result<Option<DifyConnection>> {
    match config.half_configured_dify() {
        Some(missing) => Err(half_configured(missing).into()),
        None => Ok(config.dify_connection()),
    }
}

/// The error for a Dify setup missing `missing`, naming both remedies.
pub fn half_configured(missing: &str) -> UsageError {
    let present = if missing == ENV_API_KEY { ENV_BASE_URL } else { ENV_API_KEY };
    let field = if missing == ENV_API_KEY { "api_key" } else { "base_url" };
    let other_field = if missing == ENV_API_KEY { "base_url" } else { "api_key" };
    UsageError {
        message: format!("{present} is set but {missing} is not, so Dify cannot be used"),
        hint: format!(
            "to sync to Dify, set {missing} (environment, a .env file here, or [dify] {field} in \
             the config file); to export Markdown only, unset {present} (and [dify] \
             {other_field})"
        ),
    }
}

/// The Dify connection, or a usage error saying how to configure it.
pub fn require_dify(config: &Config) -> Result<DifyConnection> {
    dify_connection(config)?.ok_or_else(|| {
        UsageError {
            message: "Dify is not configured".into(),
            hint: "set DIFY_BASE_URL and DIFY_API_KEY (environment, a .env file here, or [dify] \
                   base_url/api_key in the config file)"
                .into(),
        }
        .into()
    })
}

/// A client for `connection`, with the config's request cap.
pub fn client(connection: &DifyConnection, config: &Config) -> Result<DifyClient> {
    DifyClient::builder(connection.base_url.clone(), connection.api_key.clone())
        .rate_limit_per_minute(config.requests_per_minute())
        .build()
        .with_context(|| format!("setting up the Dify client for {}", connection.base_url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    use crate::args::{Cli, Command};

    fn crawl_args(argv: &[&str]) -> CrawlArgs {
        let cli = Cli::parse_from(["dify-crawl", "crawl"].iter().chain(argv));
        match cli.command {
            Command::Crawl(args) => *args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let file = "[crawl]\nmax_pages = 5\nmax_depth = 2\nexclude = [\"/tag/\"]\n";
        let mut config = Config::parse(file, Path::new("c.toml")).unwrap();
        let args = crawl_args(&[
            "--max-pages",
            "7",
            "--exclude",
            "/x/",
            "--ignore-robots",
            "--subdomains",
            "--no-parent",
            "--allow-host",
            "blog.example.org",
        ]);
        apply_crawl_args(&mut config, &args);
        let crawl = config.crawl_config(&["https://a.example/".into()]);
        assert_eq!(crawl.max_pages, 7);
        assert!(crawl.allow_subdomains);
        assert!(crawl.no_parent);
        assert_eq!(crawl.extra_hosts, vec!["blog.example.org"]);
        assert_eq!(crawl.max_depth, 2);
        assert_eq!(crawl.exclude, vec!["/tag/", "/x/"]);
        assert!(!crawl.respect_robots);
        assert!(crawl.sitemaps);
        assert_eq!(crawl.per_host, site_crawler::DEFAULT_PER_HOST);
    }

    #[test]
    fn url_lists_skip_comments_and_blanks() {
        let text = "# docs\nhttps://a.example/\n\n  https://b.example/x  # the blog\n#https://c/\n";
        assert_eq!(parse_urls(text), vec!["https://a.example/", "https://b.example/x"]);
    }
}
