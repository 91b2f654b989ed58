//! Exit codes and how errors are shown to people.
//!
//! Every error reaches `main` as an `anyhow::Error` whose context says what
//! was being attempted. It is printed once as `dify-crawl: error: ...` with
//! its cause chain, followed by a `hint:` line saying what to do. Hints are
//! chosen by looking for known error types in the chain, so the code that
//! fails does not have to know how the failure is explained.

use std::fmt::Write as _;
use std::process::ExitCode;

use kb_sync::config::ConfigError;
use kb_sync::dify_sink::SyncError;
use kb_sync::route::RouteError;
use site_crawler::CrawlError;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every page was synced or exported.
    Success,
    /// A fatal error: bad config, wrong key, Dify unreachable.
    Fatal,
    /// The run finished but some pages failed; they are recorded and
    /// `dify-crawl retry` re-attempts them.
    PagesFailed,
    /// Ctrl-C: state was saved.
    Interrupted,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(match exit {
            Exit::Success => 0,
            Exit::Fatal => 1,
            Exit::PagesFailed => 2,
            Exit::Interrupted => 130,
        })
    }
}

/// A usage problem found after parsing, shown with its own hint.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

/// The text printed for a fatal error: the error, its causes and a hint.
///
/// A Dify client error already names its root cause in one line
/// ("listing datasets: connection refused"), so the HTTP stack's own
/// layers below it are shown only when `all_causes` is set (`-v`).
pub fn render_error(err: &anyhow::Error, all_causes: bool) -> String {
    let mut out = format!("dify-crawl: error: {err}\n");
    for cause in err.chain().skip(1) {
        let _ = writeln!(out, "  caused by: {cause}");
        if !all_causes && as_client_error(cause).is_some() {
            break;
        }
    }
    let _ = writeln!(out, "hint: {}", hint_for(err));
    out
}

/// The Dify client error in `cause`, held directly or boxed.
fn as_client_error<'a>(
    cause: &'a (dyn std::error::Error + 'static),
) -> Option<&'a dify_client::Error> {
    let boxed = cause.downcast_ref::<Box<dify_client::Error>>().map(|b| &**b);
    boxed.or_else(|| cause.downcast_ref::<dify_client::Error>())
}

/// What to do about `err`, from the first cause that has a known remedy.
fn hint_for(err: &anyhow::Error) -> String {
    known_remedy(err).unwrap_or_else(|| {
        let io = err.chain().any(|cause| cause.is::<std::io::Error>());
        if io {
            "check that the path above exists and that you may write there".into()
        } else {
            "run again with -v for details".into()
        }
    })
}

fn known_remedy(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|cause| {
        if let Some(usage) = cause.downcast_ref::<UsageError>() {
            return Some(usage.hint.clone());
        }
        if cause.is::<ConfigError>() || cause.is::<RouteError>() {
            return Some("fix the value named above in the config file or flag".into());
        }
        if let Some(crawl) = cause.downcast_ref::<CrawlError>() {
            return Some(crawl_hint(crawl));
        }
        if let Some(sync) = cause.downcast_ref::<SyncError>() {
            return sync_hint(sync);
        }
        as_client_error(cause).map(dify_hint)
    })
}

fn crawl_hint(err: &CrawlError) -> String {
    match err {
        CrawlError::InvalidPattern { .. } => {
            "--include/--exclude take Rust regex syntax; escape literal dots and `?` with `\\`"
                .into()
        }
        CrawlError::NoStartUrls => "give at least one URL or --urls-file FILE".into(),
        CrawlError::InvalidHost { .. } => {
            "--allow-host and [crawl].extra_hosts take a host name such as docs.example.com".into()
        }
        CrawlError::InvalidSetting { .. } => {
            "fix the value named above in the config file or flag".into()
        }
        _ => "start URLs must be absolute http:// or https:// URLs, e.g. https://docs.example.com/"
            .into(),
    }
}

/// Hints for the sink's run-wide failures; other variants defer to the
/// client error they wrap.
fn sync_hint(err: &SyncError) -> Option<String> {
    match err {
        SyncError::Unauthorized(_) => Some(KEY_HINT.into()),
        SyncError::Unreachable(_) => Some(UNREACHABLE_HINT.into()),
        SyncError::Chunking(_) | SyncError::Options(_) => {
            Some("fix the [chunking] or [dify] settings named above in the config file".into())
        }
        SyncError::State(_) => Some(
            "check that the --state file is writable and not used by another dify-crawl".into(),
        ),
        _ => None,
    }
}

const KEY_HINT: &str = "check DIFY_API_KEY: it must be a knowledge base API key (dataset-...), \
                        from Dify's Knowledge > Service API page";

const UNREACHABLE_HINT: &str = "check DIFY_BASE_URL and that Dify is running and reachable; \
                                `dify-crawl doctor` checks the setup";

fn dify_hint(err: &dify_client::Error) -> String {
    if err.is_unauthorized() {
        KEY_HINT.into()
    } else if err.is_rate_limited() {
        "Dify Cloud's request limit was reached: set [dify].requests_per_minute to your plan's \
         limit and run again"
            .into()
    } else if err.status().is_none() || err.is_circuit_open() {
        UNREACHABLE_HINT.into()
    } else {
        "run `dify-crawl doctor` to check the Dify setup; failed pages are kept for \
         `dify-crawl retry`"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shows_chain_and_hint() {
        let usage = UsageError { message: "no start URL given".into(), hint: "give one".into() };
        let err = anyhow::Error::new(usage).context("preparing the crawl");
        let text = render_error(&err, false);
        assert_eq!(
            text,
            "dify-crawl: error: preparing the crawl\n  caused by: no start URL given\nhint: give one\n"
        );
    }

    #[test]
    fn the_http_stack_below_a_client_error_is_shown_only_on_request() {
        let below = serde_json::from_str::<u32>("x").unwrap_err();
        let client = dify_client::Error::Decode {
            action: "listing datasets".into(),
            endpoint: "GET /datasets",
            source: below,
        };
        let err = anyhow::Error::new(client).context("connecting to Dify");

        let short = render_error(&err, false);
        assert!(short.contains("caused by: listing datasets"), "{short}");
        assert_eq!(short.matches("caused by:").count(), 1, "{short}");
        assert_eq!(render_error(&err, true).matches("caused by:").count(), 2);
    }

    #[test]
    fn exit_codes_are_stable() {
        assert_eq!(ExitCode::from(Exit::Success), ExitCode::from(0));
        assert_eq!(ExitCode::from(Exit::Fatal), ExitCode::from(1));
        assert_eq!(ExitCode::from(Exit::PagesFailed), ExitCode::from(2));
        assert_eq!(ExitCode::from(Exit::Interrupted), ExitCode::from(130));
    }
}
