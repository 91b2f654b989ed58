//! `dify-crawl status`: what the state store knows, per knowledge base, and
//! which pages failed with what error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use kb_sync::state::{FailedPage, Stage, StateStore};
use serde::Serialize;

use crate::args::{GlobalArgs, StatusArgs};
use crate::exit::{Exit, UsageError};

#[derive(Debug, Serialize)]
struct Status {
    knowledge_bases: BTreeMap<String, BTreeMap<Stage, u64>>,
    failed: Vec<FailedPage>,
}

/// Runs `dify-crawl status`.
pub fn run(args: &StatusArgs, global: &GlobalArgs) -> Result<Exit> {
    require_store(&global.state)?;
    let path = &global.state;
    let store = StateStore::open_read_only(path)
        .with_context(|| format!("opening the state store {}", path.display()))?;
    let status = Status {
        knowledge_bases: store.status_counts().context("reading page counts")?,
        failed: store.failed_pages().context("reading failed pages")?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(Exit::Success)
}

/// Opens the store only if it exists: opening creates a file, and a status
/// of a store that was never written would only mislead.
pub fn open_existing(path: &std::path::Path) -> Result<StateStore> {
    require_store(path)?;
    StateStore::open(path).with_context(|| format!("opening the state store {}", path.display()))
}

fn require_store(path: &std::path::Path) -> Result<()> {
    if !path.is_file() {
        return Err(UsageError {
            message: format!("no state store at {}", path.display()),
            hint: "run `dify-crawl crawl` with Dify configured first, or point --state at the \
                   store it wrote"
                .into(),
        }
        .into());
    }
    Ok(())
}

fn render(status: &Status) -> String {
    let mut out = String::new();
    if status.knowledge_bases.is_empty() {
        out.push_str("No pages recorded yet.\n");
    }
    for (kb, stages) in &status.knowledge_bases {
        let total: u64 = stages.values().sum();
        let parts: Vec<String> =
            stages.iter().map(|(stage, n)| format!("{} {n}", stage.as_str())).collect();
        let name = if kb.is_empty() { "(not routed)" } else { kb };
        let _ = writeln!(out, "Knowledge base {name:?}: {total} pages ({})", parts.join(", "));
    }
    if !status.failed.is_empty() {
        let _ = writeln!(
            out,
            "Failed pages ({}), `dify-crawl retry` re-attempts them:",
            status.failed.len()
        );
        for page in &status.failed {
            let _ = writeln!(out, "  {} [{}]: {}", page.url, page.stage, page.error);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_counts_and_failures() {
        let counts = BTreeMap::from([(Stage::Synced, 3), (Stage::Failed, 1)]);
        let status = Status {
            knowledge_bases: BTreeMap::from([("Docs".to_owned(), counts)]),
            failed: vec![FailedPage {
                url: "https://x.example/a".into(),
                knowledge_base: "Docs".into(),
                stage: "fetch".into(),
                error: "http 500".into(),
            }],
        };
        let text = render(&status);
        assert!(text.contains("Knowledge base \"Docs\": 4 pages (synced 3, failed 1)"), "{text}");
        assert!(text.contains("  https://x.example/a [fetch]: http 500"), "{text}");
    }
}
