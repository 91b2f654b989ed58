//! `dify-crawl crawl`: check everything that can be checked offline, connect
//! to Dify (the first request validates the key), then run the pipeline.

use std::path::Path;

use anyhow::{Context, Result};
use kb_sync::config::Config;
use kb_sync::dify_sink::{DifySink, DifySinkOptions};
use kb_sync::export::FolderSink;
use kb_sync::pipeline::{Pipeline, PipelineOptions};
use kb_sync::route::Router;
use kb_sync::state::StateStore;
use tokio_util::sync::CancellationToken;

use crate::args::{CrawlArgs, DEFAULT_OUT_DIR, GlobalArgs};
use crate::exit::Exit;
use crate::output::Verbosity;
use crate::settings;

/// Runs `dify-crawl crawl`.
pub async fn run(args: CrawlArgs, global: &GlobalArgs, verbosity: Verbosity) -> Result<Exit> {
    let mut config = settings::load_config(global)?;
    let connection = settings::dify_connection(&config)?;
    // The file was validated on load; flag values are checked by clap
    // (ranges) and by the crawler (URLs, patterns), which name the flag's
    // value rather than the file.
    settings::apply_crawl_args(&mut config, &args);
    let start_urls = settings::start_urls(&args, &config)?;
    let router = config.router(args.kb.as_deref()).context("setting up routing")?;
    let crawl = config.crawl_config(&start_urls);
    let pipeline = Pipeline::new(crawl.clone(), config.extract_options(), router.clone())?;

    let sink_options = config.sink_options(args.dry_run, args.prune);
    let options = PipelineOptions {
        prune: args.prune,
        write_concurrency: sink_options.write_concurrency,
        ..PipelineOptions::default()
    };
    let mut pipeline = pipeline.options(options);

    if connection.is_some() {
        let sink = connect(&config, &global.state, sink_options).await?;
        if args.reconcile {
            reconcile(&sink, &router, &crawl.start_urls).await?;
        }
        pipeline = pipeline.dify(sink);
    } else {
        tracing::info!("Dify is not configured (DIFY_BASE_URL, DIFY_API_KEY): exporting only");
    }

    let out = args.out.clone().or_else(|| connection.is_none().then(|| DEFAULT_OUT_DIR.into()));
    if let Some(dir) = out {
        pipeline = pipeline.folder(open_folder(&dir)?);
    }
    super::execute(pipeline, args.report.as_deref(), verbosity).await
}

/// The Dify sink: opens the state store and checks the key with one read.
pub async fn connect(config: &Config, state: &Path, options: DifySinkOptions) -> Result<DifySink> {
    let connection = settings::require_dify(config)?;
    let client = settings::client(&connection, config)?;
    // A dry run reads the store (or plans on an empty one) and never
    // creates or changes the file.
    let store =
        if options.dry_run { StateStore::open_read_only(state) } else { StateStore::open(state) };
    let store = store.with_context(|| format!("opening the state store {}", state.display()))?;
    DifySink::connect(client, store, options)
        .await
        .with_context(|| format!("connecting to Dify at {}", connection.base_url))
}

/// Rebuilds lost state for the knowledge bases this crawl can write to.
async fn reconcile(sink: &DifySink, router: &Router, start_urls: &[String]) -> Result<()> {
    let mut names = router.named_knowledge_bases();
    for url in start_urls.iter().filter_map(|u| url::Url::parse(u).ok()) {
        let name = router.route(&url);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let summary = sink.reconcile(&names).await.context("reconciling with Dify")?;
    for (name, counts) in &summary.knowledge_bases {
        tracing::info!(
            knowledge_base = %name,
            documents = counts.documents,
            matched = counts.matched,
            missing = counts.missing,
            "reconciled"
        );
    }
    Ok(())
}

/// The export folder, created if needed.
pub fn open_folder(dir: &Path) -> Result<FolderSink> {
    FolderSink::open(dir).with_context(|| format!("opening the export folder {}", dir.display()))
}

/// Fires `cancel` on the first Ctrl-C; a second one quits at once.
pub fn watch_ctrl_c(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!(
            "dify-crawl: stopping: finishing writes in flight and saving state \
             (press Ctrl-C again to quit at once)"
        );
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}
