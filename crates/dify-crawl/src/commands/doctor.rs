//! `dify-crawl doctor`: checks the setup step by step and says how to fix
//! each problem.
//!
//! Checks run in order and stop where later ones cannot mean anything (no
//! point checking knowledge bases with a rejected key). Each line starts
//! with `ok`, `note` (works, but worth knowing) or `FAIL` followed by a
//! `fix:` line. The exit code is 1 when anything failed.

use anyhow::Result;
use dify_client::{DifyClient, IndexingTechnique, ListDatasetsQuery};
use kb_sync::config::Config;

use crate::args::{DoctorArgs, GlobalArgs};
use crate::exit::Exit;
use crate::settings;

/// Collected check results.
#[derive(Debug, Default)]
struct Checks {
    failed: bool,
}

impl Checks {
    fn ok(&mut self, text: &str) {
        println!("ok    {text}");
    }

    fn note(&mut self, text: &str) {
        println!("note  {text}");
    }

    fn fail(&mut self, text: &str, fix: &str) {
        self.failed = true;
        println!("FAIL  {text}");
        println!("      fix: {fix}");
    }
}

/// Runs `dify-crawl doctor`.
pub async fn run(args: &DoctorArgs, global: &GlobalArgs) -> Result<Exit> {
    let mut checks = Checks::default();
    if let Some(config) = check_config(&mut checks, global)
        && let Some(client) = check_connection(&mut checks, &config)
        && check_key(&mut checks, &client).await
    {
        check_knowledge_bases(&mut checks, &client, &config, &args.kb).await;
    }
    Ok(if checks.failed { Exit::Fatal } else { Exit::Success })
}

fn check_config(checks: &mut Checks, global: &GlobalArgs) -> Option<Config> {
    match settings::load_config(global) {
        Ok(config) => {
            let origin = config.source.as_ref().map_or_else(
                || "none found, using built-in defaults".to_owned(),
                |p| p.display().to_string(),
            );
            checks.ok(&format!("config file: {origin}"));
            Some(config)
        }
        Err(err) => {
            checks.fail(&format!("{err:#}"), "correct the config file; `--help` lists the flags");
            None
        }
    }
}

fn check_connection(checks: &mut Checks, config: &Config) -> Option<DifyClient> {
    let Some(connection) = config.dify_connection() else {
        checks.fail(
            "Dify is not configured: DIFY_BASE_URL and DIFY_API_KEY are needed",
            "set both in the environment or a .env file here (or [dify] base_url and api_key \
             in the config file); without them `crawl` only exports Markdown",
        );
        return None;
    };
    match settings::client(&connection, config) {
        Ok(client) => {
            checks.ok(&format!("Dify API base: {}", client.base_url()));
            Some(client)
        }
        Err(err) => {
            checks.fail(&format!("{err:#}"), "DIFY_BASE_URL must be like http://host/v1");
            None
        }
    }
}

/// One cheap read: proves the server answers and the key is accepted.
async fn check_key(checks: &mut Checks, client: &DifyClient) -> bool {
    let query = ListDatasetsQuery { page: Some(1), limit: Some(1), ..ListDatasetsQuery::default() };
    let result = client.list_datasets(&query).await;
    let version = client.server_version().unwrap_or_else(|| "unknown".into());
    match result {
        Ok(_) => {
            checks.ok(&format!("Dify reachable, API key accepted (Dify version {version})"));
            true
        }
        Err(err) if err.is_unauthorized() => {
            checks.fail(
                &format!("the API key was rejected: {}", chain(&err)),
                "use a knowledge base API key (starts with `dataset-`) from Dify's Knowledge > \
                 Service API page",
            );
            false
        }
        Err(err) if err.status().is_some() => {
            checks.note(&format!(
                "API key accepted (Dify version {version}), but listing knowledge bases failed: {}",
                chain(&err)
            ));
            checks.note("Dify's plugin service may be down; syncing can still work");
            true
        }
        Err(err) => {
            checks.fail(
                &format!("Dify is not reachable: {}", chain(&err)),
                "check DIFY_BASE_URL and that Dify is running and reachable from here",
            );
            false
        }
    }
}

async fn check_knowledge_bases(
    checks: &mut Checks,
    client: &DifyClient,
    config: &Config,
    extra: &[String],
) {
    let mut names = config.router(None).map(|r| r.named_knowledge_bases()).unwrap_or_default();
    names.extend(extra.iter().filter(|n| !names.contains(n)).cloned().collect::<Vec<_>>());
    if names.is_empty() {
        checks.note(
            "no knowledge base named (--kb here, or [[route]] rules): crawls write one \
             knowledge base per host, created on first use",
        );
        return;
    }
    let wanted = config.sink_options(false, false).indexing_technique;
    for name in names {
        match client.find_dataset(&name).await {
            Ok(Some(dataset)) => {
                let technique = dataset.indexing_technique.map_or("not set yet", technique_name);
                let docs = dataset.document_count.unwrap_or(0);
                checks.ok(&format!(
                    "knowledge base {name:?}: exists, indexing {technique}, {docs} documents"
                ));
            }
            Ok(None) => checks.note(&format!(
                "knowledge base {name:?} does not exist yet; the first crawl creates it \
                 (indexing {})",
                technique_name(wanted)
            )),
            Err(err) => checks.fail(
                &format!("looking up knowledge base {name:?}: {}", chain(&err)),
                "check that the key's workspace can use this knowledge base (API access enabled)",
            ),
        }
    }
}

fn technique_name(technique: IndexingTechnique) -> &'static str {
    match technique {
        IndexingTechnique::Economy => "economy",
        IndexingTechnique::HighQuality => "high_quality",
        _ => "unknown",
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
