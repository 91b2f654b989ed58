//! `dify-crawl doctor`: checks the setup step by step and says how to fix
//! each problem.
//!
//! Checks run in order and stop where later ones cannot mean anything (no
//! point checking knowledge bases with a rejected key). Each line starts
//! with `ok`, `note` (works, but worth knowing), `WARN` (works, but not as
//! configured) or `FAIL`; the last two are followed by a `fix:` line. The
//! exit code is 1 when anything failed.
//!
//! The key check counts only a JSON answer from Dify as proof: an HTML 404
//! means the base URL points at something else (a wrong path prefix, the
//! web console instead of the API), and a 5xx means Dify is broken. For
//! each knowledge base, doctor reads it by id as the sync will, which is
//! where Dify refuses one whose API access is switched off.

use anyhow::Result;
use dify_client::{Dataset, DifyClient, IndexingTechnique, ListDatasetsQuery};
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

    fn warn(&mut self, text: &str, fix: &str) {
        println!("WARN  {text}");
        println!("      fix: {fix}");
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
    if let Some(missing) = config.half_configured_dify() {
        let error = settings::half_configured(missing);
        checks.fail(&error.message, &error.hint);
        return None;
    }
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

/// One cheap read: proves the server answers as Dify and the key is
/// accepted.
async fn check_key(checks: &mut Checks, client: &DifyClient) -> bool {
    let query = ListDatasetsQuery { page: Some(1), limit: Some(1), ..ListDatasetsQuery::default() };
    let result = client.list_datasets(&query).await;
    let version = client.server_version().unwrap_or_else(|| "unknown".into());
    let base = client.base_url().as_str().trim_end_matches('/').to_owned();
    let Err(err) = result else {
        checks.ok(&format!("Dify reachable, API key accepted (Dify version {version})"));
        return true;
    };
    match err.status() {
        Some(401) => checks.fail(
            &format!("the API key was rejected: {}", chain(&err)),
            "use a knowledge base API key (starts with `dataset-`) from Dify's Knowledge > \
             Service API page",
        ),
        Some(404) => checks.fail(
            &format!("no Dify knowledge API at {base}: GET {base}/datasets answered 404"),
            "set DIFY_BASE_URL to the API base Dify shows on Knowledge > Service API, such as \
             http://your-host/v1 or https://api.dify.ai/v1 (not the web console's address, and \
             with no extra path before /v1)",
        ),
        Some(status) if status >= 500 => checks.fail(
            &format!("Dify answered {status} (a server error): {}", chain(&err)),
            "Dify itself is failing: check its api and worker containers and their logs \
             (`docker compose logs api`), then run doctor again",
        ),
        Some(400 | 403) if !err.is_rate_limited() => {
            // Listing asks Dify's plugin service about embedding models and
            // can fail while the key itself was accepted.
            checks.note(&format!(
                "API key accepted (Dify version {version}), but listing knowledge bases failed: {}",
                chain(&err)
            ));
            checks.note("Dify's plugin service may be down; syncing can still work");
            return true;
        }
        Some(_) if err.is_rate_limited() => checks.fail(
            &format!("Dify's request limit was reached: {}", chain(&err)),
            "wait a minute and run again; set [dify].requests_per_minute to your plan's limit \
             so crawls stay under it",
        ),
        Some(status) => checks.fail(
            &format!("Dify answered {status}: {}", chain(&err)),
            "check DIFY_BASE_URL; `dify-crawl doctor -v` shows the exchange",
        ),
        None => checks.fail(
            &format!("Dify is not reachable: {}", chain(&err)),
            "check DIFY_BASE_URL and that Dify is running and reachable from here",
        ),
    }
    false
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
            Ok(Some(dataset)) => check_existing(checks, client, config, &name, dataset).await,
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

/// An existing knowledge base: API access on, and the indexing technique
/// the config asks for.
async fn check_existing(
    checks: &mut Checks,
    client: &DifyClient,
    config: &Config,
    name: &str,
    listed: Dataset,
) {
    let enable_fix = format!(
        "in Dify, open Knowledge > {name} > API Access (Service API) and switch API access on \
         for this knowledge base"
    );
    if listed.enable_api == Some(false) {
        checks.fail(&format!("knowledge base {name:?}: API access is disabled"), &enable_fix);
        return;
    }
    // Listing shows every knowledge base; reading one is what Dify refuses
    // when its API access is off (older servers do not list the flag).
    let dataset = match client.get_dataset(&listed.id).await {
        Ok(dataset) => dataset,
        Err(err) if err.status() == Some(403) && !err.is_rate_limited() => {
            checks.fail(
                &format!("knowledge base {name:?}: Dify refuses API access: {}", chain(&err)),
                &enable_fix,
            );
            return;
        }
        Err(err) => {
            checks.fail(
                &format!("reading knowledge base {name:?}: {}", chain(&err)),
                "run doctor again; if it persists, check Dify's api logs",
            );
            return;
        }
    };

    let technique = dataset.indexing_technique.or(listed.indexing_technique);
    let docs = dataset.document_count.or(listed.document_count).unwrap_or(0);
    let shown = technique.map_or("not set yet", technique_name);
    let wanted = config
        .knowledge_base
        .indexing_technique
        .map(|_| config.sink_options(false, false).indexing_technique);
    match (technique, wanted) {
        (Some(have), Some(want)) if have != want => checks.warn(
            &format!(
                "knowledge base {name:?}: indexing {shown}, but the config asks for {} \
                 ({docs} documents); syncing keeps {shown}",
                technique_name(want)
            ),
            &format!(
                "set [knowledge_base].indexing_technique = \"{shown}\" to match, or switch the \
                 knowledge base to {} in Dify (Knowledge > {name} > Settings; Dify re-indexes \
                 its documents), or route pages to a new knowledge base name",
                technique_name(want)
            ),
        ),
        _ => checks.ok(&format!(
            "knowledge base {name:?}: exists, API access on, indexing {shown}, {docs} documents"
        )),
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
