//! `dify-crawl retry`: re-attempt failed pages without crawling the site.
//!
//! Pages whose content is stored (the write to Dify failed) are resent from
//! the store. Pages whose fetch failed are fetched again, alone: depth 0, no
//! sitemaps, each sent to the knowledge base it was routed to before. Pages
//! never routed (their first fetch failed) follow `--kb` or the routing
//! rules. The run never counts as a complete crawl, so nothing is pruned
//! for being missing from it.

use std::collections::HashMap;

use anyhow::{Context, Result};
use kb_sync::dify_sink::RetrySummary;
use kb_sync::pipeline::{Pipeline, PipelineOptions};
use kb_sync::state::FailedPage;

use super::crawl::{connect, open_folder};
use super::status::open_existing;
use crate::args::{GlobalArgs, RetryArgs};
use crate::exit::Exit;
use crate::output::Verbosity;
use crate::settings;

/// Runs `dify-crawl retry`.
pub async fn run(args: RetryArgs, global: &GlobalArgs, verbosity: Verbosity) -> Result<Exit> {
    let mut config = settings::load_config(global)?;
    drop(open_existing(&global.state)?);
    if args.wait {
        config.dify.wait_for_indexing = Some(true);
    }
    let sink_options = config.sink_options(false, false);
    let write_concurrency = sink_options.write_concurrency;
    let sink = connect(&config, &global.state, sink_options).await?;

    let refetch: Vec<FailedPage> = sink
        .store()
        .failed_pages()
        .context("reading failed pages")?
        .into_iter()
        .filter(|page| page.stage == "fetch")
        .collect();
    let resent = sink.retry_pending().await.context("resending stored pages")?;
    println!("{}", describe(&resent));

    if refetch.is_empty() {
        let summary = sink.finish(false).await.context("finishing the sync")?;
        let failed = summary.has_failures() || resent.failed > 0;
        return Ok(if failed { Exit::PagesFailed } else { Exit::Success });
    }

    println!("Fetching {} page(s) whose fetch failed", refetch.len());
    let urls: Vec<String> = refetch.iter().map(|p| p.url.clone()).collect();
    let pinned: HashMap<String, String> = refetch
        .iter()
        .filter(|p| !p.knowledge_base.is_empty())
        .map(|p| (p.url.clone(), p.knowledge_base.clone()))
        .collect();
    config.crawl.urls.clear();
    let mut crawl = config.crawl_config(&urls);
    crawl.max_depth = 0;
    crawl.sitemaps = false;
    let router = config.router(args.kb.as_deref()).context("setting up routing")?.pinned(pinned);
    let options = PipelineOptions { covers_site: false, write_concurrency, ..Default::default() };
    let mut pipeline =
        Pipeline::new(crawl, config.extract_options(), router)?.options(options).dify(sink);
    if let Some(dir) = &args.out {
        pipeline = pipeline.folder(open_folder(dir)?);
    }

    let exit = super::execute(pipeline, args.report.as_deref(), verbosity).await?;
    Ok(if exit == Exit::Success && resent.failed > 0 { Exit::PagesFailed } else { exit })
}

fn describe(resent: &RetrySummary) -> String {
    format!(
        "Resent {} stored page(s): {} created, {} updated, {} unchanged, {} blocked, {} failed",
        resent.attempted,
        resent.created,
        resent.updated,
        resent.unchanged,
        resent.blocked,
        resent.failed
    )
}
