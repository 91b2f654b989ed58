//! The built binary against a generated site and the Dify test server, all
//! on 127.0.0.1. Every spawned process gets a cleared environment and a
//! fresh working directory, so nothing from the developer's shell, `.env`
//! or config file leaks in.

use std::path::Path;
use std::process::{Command, Output};

use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};
use test_support::site::{Route, RunningSite, TestSite, article_page};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `cwd` with only `env` set.
async fn dify_crawl(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dify-crawl"));
    command.args(args).current_dir(cwd).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    let output: Output =
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn dify_env(server: &DifyServer) -> Vec<(&'static str, String)> {
    vec![("DIFY_BASE_URL", server.base_url()), ("DIFY_API_KEY", server.api_key().to_owned())]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn url(site: &RunningSite) -> String {
    site.base_url().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn help_shows_the_library_defaults() {
    let cwd = tempfile::tempdir().unwrap();
    let run = dify_crawl(cwd.path(), &["crawl", "--help"], &[]).await;
    assert_eq!(run.code, 0);
    for expected in [
        format!("[default: {}]", site_crawler::DEFAULT_MAX_PAGES),
        format!("[default: {}]", site_crawler::DEFAULT_CONCURRENCY),
        format!("[default: {}]", site_crawler::DEFAULT_PER_HOST),
        format!("[default: {}]", site_crawler::DEFAULT_DELAY.as_millis()),
        format!("[default: {}]", kb_sync::state::DEFAULT_STATE_PATH),
        "Dangerous".to_owned(),
    ] {
        assert!(run.stdout.contains(&expected), "{expected} missing from:\n{}", run.stdout);
    }
    // Every crawl option that takes a value and has a default shows it on
    // its own line; the others (--include, --kb, ...) are off when absent.
    for option in [
        "--max-pages",
        "--max-depth",
        "--concurrency",
        "--per-host",
        "--delay",
        "--user-agent",
        "--out",
        "--state",
        "--config",
    ] {
        let line = run.stdout.lines().find(|l| l.trim_start().starts_with(option)).unwrap();
        assert!(line.contains("[default"), "{option} shows no default: {line}");
    }
    let depth = format!("[default: {}]", site_crawler::DEFAULT_MAX_DEPTH);
    assert!(run.stdout.contains(&depth), "{}", run.stdout);
    let agent = format!("[default: {}]", site_crawler::DEFAULT_USER_AGENT);
    assert!(run.stdout.contains(&agent), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn crawl_to_a_folder_writes_files_and_manifest() {
    let site = TestSite::plain(3).start().await;
    let cwd = tempfile::tempdir().unwrap();
    let args = ["crawl", &url(&site), "--out", "site", "--delay", "0", "--report", "r.json"];
    let run = dify_crawl(cwd.path(), &args, &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    let out = cwd.path().join("site");
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 4, "{manifest}");
    let host = format!("127.0.0.1_{}", site.addr().port());
    assert!(out.join(&host).join("index.md").is_file());
    assert!(out.join(&host).join("page/2.md").is_file());
    assert!(run.stdout.contains("pages fetched: 4"), "{}", run.stdout);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["export"]["new"], 4);
    assert_eq!(report["outcome"], "completed");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_dify_and_out_the_default_folder_is_used() {
    let site = TestSite::plain(1).start().await;
    let cwd = tempfile::tempdir().unwrap();
    let run = dify_crawl(cwd.path(), &["crawl", &url(&site), "--delay", "0"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(cwd.path().join("dify-crawl-out/manifest.jsonl").is_file());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_start_urls_fail_before_anything_runs() {
    let cwd = tempfile::tempdir().unwrap();
    for (arg, message) in
        [("ftp://example.com/", "unsupported start url"), ("not a url", "invalid start url")]
    {
        let run = dify_crawl(cwd.path(), &["crawl", arg, "--out", "x"], &[]).await;
        assert_eq!(run.code, 1, "{arg}: {}", run.stderr);
        assert!(run.stderr.starts_with("dify-crawl: error:"), "{}", run.stderr);
        assert!(run.stderr.contains(message), "{}", run.stderr);
        assert!(run.stderr.contains("hint:"), "{}", run.stderr);
        assert!(!cwd.path().join("x").exists(), "output created for {arg}");
    }

    let run = dify_crawl(cwd.path(), &["crawl"], &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no start URL given"), "{}", run.stderr);

    let args = ["crawl", "http://127.0.0.1:9/", "--allow-host", "a b", "--out", "x"];
    let run = dify_crawl(cwd.path(), &args, &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("invalid extra host `a b`"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: --allow-host"), "{}", run.stderr);
    assert!(!cwd.path().join("x").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_hosts_widen_the_scope() {
    // Both sites listen on 127.0.0.1; `localhost` names the second one, so
    // it is another host to the crawler.
    let other = TestSite::new().page("/", article_page("Other", 2, 4, &[])).start().await;
    let other_url = other.url("/").as_str().replace("127.0.0.1", "localhost");
    let links = [(other_url.clone(), "Elsewhere".to_owned())];
    let site = TestSite::new().page("/", article_page("Home", 1, 4, &links)).start().await;
    let cwd = tempfile::tempdir().unwrap();

    let narrow = ["crawl", &url(&site), "--out", "a", "--delay", "0"];
    let run = dify_crawl(cwd.path(), &narrow, &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(other.hits("/"), 0, "another host is out of scope by default");

    let wide = ["crawl", &url(&site), "--out", "b", "--delay", "0", "--allow-host", "localhost"];
    let run = dify_crawl(cwd.path(), &wide, &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(other.hits("/"), 1, "{}", run.stdout);
    let manifest = std::fs::read_to_string(cwd.path().join("b/manifest.jsonl")).unwrap();
    assert!(manifest.contains(&other_url), "{manifest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_fails_at_the_first_call() {
    let site = TestSite::plain(1).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = [("DIFY_BASE_URL", server.base_url()), ("DIFY_API_KEY", "dataset-wrong".to_owned())];
    let run = dify_crawl(cwd.path(), &["crawl", &url(&site)], &env_refs(&env)).await;

    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("rejected the api key"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: check DIFY_API_KEY"), "{}", run.stderr);
    assert!(!run.stderr.contains("dataset-wrong"), "key leaked: {}", run.stderr);
    assert_eq!(server.stats().requests_total, 1);
    assert_eq!(site.total_hits(), 0, "the site was crawled before the key was checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_dify_is_fatal() {
    let site = TestSite::plain(1).start().await;
    let cwd = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let env = [("DIFY_BASE_URL", "http://127.0.0.1:1/v1"), ("DIFY_API_KEY", "dataset-x")];
    let run = dify_crawl(cwd.path(), &["crawl", &url(&site)], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("unreachable"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: check DIFY_BASE_URL"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_pages_exit_with_2() {
    let links = [("/broken".to_owned(), "Broken".to_owned())];
    let site = TestSite::new()
        .page("/", article_page("Home", 1, 4, &links))
        .route("/broken", Route::status(500))
        .start()
        .await;
    let cwd = tempfile::tempdir().unwrap();
    let run =
        dify_crawl(cwd.path(), &["crawl", &url(&site), "--out", "o", "--delay", "0"], &[]).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("/broken [fetch]"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_links_are_listed_without_failing_the_run() {
    let links = [("/missing".to_owned(), "Missing".to_owned())];
    let site = TestSite::new().page("/", article_page("Home", 1, 4, &links)).start().await;
    let cwd = tempfile::tempdir().unwrap();
    let args = ["crawl", &url(&site), "--out", "o", "--delay", "0", "--report", "r.json"];
    let run = dify_crawl(cwd.path(), &args, &[]).await;

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("gone (404/410): 1"), "{}", run.stdout);
    let broken = format!("/missing [404] linked from {}", url(&site));
    assert!(run.stdout.contains(&broken), "{}", run.stdout);
    assert!(!run.stdout.contains("failed"), "{}", run.stdout);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["crawl"]["gone"], 1);
    assert_eq!(report["gone"][0]["status"], 404);
    assert_eq!(report["gone"][0]["linked_from"], url(&site));
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_writes_nothing_to_dify() {
    let site = TestSite::plain(2).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let args = ["crawl", &url(&site), "--dry-run", "--kb", "Docs", "--delay", "0"];
    let run = dify_crawl(cwd.path(), &args, &env_refs(&env)).await;

    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let stats = server.stats();
    for route in [routes::CREATE_DATASET, routes::CREATE_BY_TEXT, routes::CREATE_METADATA] {
        assert_eq!(stats.requests(route), 0, "{route}: {:?}", stats.requests_by_route);
    }
    assert!(server.datasets().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_then_status_and_doctor() {
    let site = TestSite::plain(2).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);

    let run =
        dify_crawl(cwd.path(), &["crawl", &url(&site), "--kb", "Docs", "--delay", "0"], &env).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let dataset = server.dataset_by_name("Docs").unwrap();
    assert_eq!(server.documents(&dataset.id).len(), 3);
    assert!(run.stdout.contains("knowledge base \"Docs\": 3 new"), "{}", run.stdout);

    let status = dify_crawl(cwd.path(), &["status"], &env).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("Knowledge base \"Docs\": 3 pages"), "{}", status.stdout);
    let json = dify_crawl(cwd.path(), &["status", "--json"], &env).await;
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["knowledge_bases"]["Docs"]["synced"], 3, "{json}");

    let doctor = dify_crawl(cwd.path(), &["doctor", "--kb", "Docs", "--kb", "New"], &env).await;
    assert_eq!(doctor.code, 0, "{}{}", doctor.stdout, doctor.stderr);
    assert!(doctor.stdout.contains("API key accepted (Dify version 1.13.2)"), "{}", doctor.stdout);
    assert!(doctor.stdout.contains("knowledge base \"Docs\": exists"), "{}", doctor.stdout);
    assert!(doctor.stdout.contains("\"New\" does not exist yet"), "{}", doctor.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_explains_each_problem() {
    let cwd = tempfile::tempdir().unwrap();
    let run = dify_crawl(cwd.path(), &["doctor"], &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("FAIL  Dify is not configured"), "{}", run.stdout);
    assert!(run.stdout.contains("fix: set both"), "{}", run.stdout);

    let server = DifyServer::start().await.unwrap();
    let env = [("DIFY_BASE_URL", server.base_url()), ("DIFY_API_KEY", "dataset-bad".to_owned())];
    let run = dify_crawl(cwd.path(), &["doctor"], &env_refs(&env)).await;
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("FAIL  the API key was rejected"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_without_a_store_says_what_to_do() {
    let cwd = tempfile::tempdir().unwrap();
    let run = dify_crawl(cwd.path(), &["status"], &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no state store at dify-crawl.sqlite3"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_errors_name_the_file_and_field() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("dify-crawl.toml"), "[crawl]\nmax_pagez = 3\n").unwrap();
    let run = dify_crawl(cwd.path(), &["crawl", "http://127.0.0.1:9/"], &[]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("dify-crawl.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("max_pagez"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_refetches_only_failed_pages() {
    let links = [("/flaky".to_owned(), "Flaky".to_owned())];
    let site = TestSite::new()
        .page("/", article_page("Home", 1, 4, &links))
        .route("/flaky", Route::status(500))
        .start()
        .await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);

    let run =
        dify_crawl(cwd.path(), &["crawl", &url(&site), "--kb", "Docs", "--delay", "0"], &env).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let status = dify_crawl(cwd.path(), &["status"], &env).await;
    assert!(status.stdout.contains("/flaky [fetch]"), "{}", status.stdout);

    site.set_page("/flaky", article_page("Flaky, fixed", 2, 4, &[]));
    let home_hits = site.hits("/");
    let retry = dify_crawl(cwd.path(), &["retry", "--kb", "Docs"], &env).await;
    assert_eq!(retry.code, 0, "{}{}", retry.stdout, retry.stderr);
    assert!(retry.stdout.starts_with("Resent 0 stored page(s)"), "{}", retry.stdout);
    assert!(retry.stdout.contains("Fetching 1 page(s) whose fetch failed"), "{}", retry.stdout);
    assert!(retry.stdout.contains("knowledge base \"Docs\": 1 new"), "{}", retry.stdout);
    assert_eq!(site.hits("/flaky"), 2);
    assert_eq!(site.hits("/"), home_hits, "retry crawled the site again");
    let dataset = server.dataset_by_name("Docs").unwrap();
    assert_eq!(server.documents(&dataset.id).len(), 2, "{}{}", retry.stdout, retry.stderr);
    let status = dify_crawl(cwd.path(), &["status"], &env).await;
    assert!(!status.stdout.contains("Failed pages"), "{}", status.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_saves_state_and_exits_130() {
    let links: Vec<(String, String)> =
        (0..30).map(|i| (format!("/slow/{i}"), format!("Slow {i}"))).collect();
    let site = TestSite::new()
        .page("/", article_page("Home", 1, 4, &links))
        .generator(|path| {
            let index: usize = path.strip_prefix("/slow/")?.parse().ok()?;
            let page = article_page(&format!("Slow {index}"), index, 4, &[]);
            Some(Route::html(page).with_delay(std::time::Duration::from_millis(200)))
        })
        .start()
        .await;
    let cwd = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dify-crawl"));
    command
        .args(["crawl", &url(&site), "--out", "o", "--delay", "0", "--per-host", "1"])
        .current_dir(cwd.path())
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();

    while site.total_hits() < 3 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let output =
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("cancelled"));
    assert!(cwd.path().join("o/manifest.jsonl").is_file(), "manifest not saved");
    assert!(site.total_hits() < 31, "the crawl went on after Ctrl-C");
}

/// Waits (up to 60 s, polling) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Sends SIGINT to `child` and collects its output.
async fn interrupt(child: std::process::Child) -> Output {
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_dify_sync_saves_state_and_a_rerun_completes_it() {
    // Six pages answer at once; the other 25 never answer during the first
    // run, so it cannot end before the interrupt, whatever the machine's
    // speed. The crawler drops those requests when interrupted.
    const FAST: usize = 5;
    const SLOW: usize = 25;
    let links: Vec<(String, String)> =
        (0..FAST + SLOW).map(|i| (format!("/p/{i}"), format!("Page {i}"))).collect();
    let page = |i: usize| article_page(&format!("Page {i}"), i, 4, &[]);
    let mut site = TestSite::new().page("/", article_page("Home", 1, 4, &links));
    for i in 0..FAST + SLOW {
        let route = Route::html(page(i));
        site = site.route(&format!("/p/{i}"), if i < FAST { route } else { route.stalled() });
    }
    let site = site.start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let start = url(&site);
    let wide = ["--delay", "0", "--per-host", "40", "--concurrency", "40"];
    let args = [["crawl", &start, "--kb", "Docs"].as_slice(), &wide].concat();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dify-crawl"));
    command
        .args(&args)
        .current_dir(cwd.path())
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();

    let synced = || server.dataset_by_name("Docs").map_or(0, |d| server.documents(&d.id).len());
    wait_until("the fast pages are in Dify", || synced() == FAST + 1).await;
    let output = interrupt(child).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("cancelled (state saved)"));

    let env = env_refs(&env);
    let status = dify_crawl(cwd.path(), &["status", "--json"], &env).await;
    assert_eq!(status.code, 0, "{}", status.stderr);
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(json["knowledge_bases"]["Docs"]["synced"], FAST + 1, "{json}");

    for i in FAST..FAST + SLOW {
        site.set_route(&format!("/p/{i}"), Route::html(page(i)));
    }
    server.reset_stats();
    let rerun = dify_crawl(cwd.path(), &args, &env).await;
    assert_eq!(rerun.code, 0, "{}{}", rerun.stdout, rerun.stderr);
    let dataset = server.dataset_by_name("Docs").unwrap();
    let docs = server.documents(&dataset.id);
    assert_eq!(docs.len(), FAST + SLOW + 1);
    let names: std::collections::HashSet<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), docs.len(), "duplicate documents");
    assert!(docs.iter().all(|d| d.write_count == 1), "a document was written twice");
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), SLOW as u64);
    assert!(rerun.stdout.contains(&format!("{SLOW} new, 0 changed, {} unchanged", FAST + 1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn half_configured_dify_is_a_usage_error() {
    let site = TestSite::plain(1).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let base = server.base_url();
    for (set, value, missing) in [
        ("DIFY_BASE_URL", base.as_str(), "DIFY_API_KEY"),
        ("DIFY_API_KEY", server.api_key(), "DIFY_BASE_URL"),
    ] {
        let args = ["crawl", &url(&site), "--out", "o", "--delay", "0"];
        let run = dify_crawl(cwd.path(), &args, &[(set, value)]).await;
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        let message = format!("{set} is set but {missing} is not");
        assert!(run.stderr.contains(&message), "{}", run.stderr);
        assert!(run.stderr.contains(&format!("hint: to sync to Dify, set {missing}")));
        assert!(run.stderr.contains(&format!("to export Markdown only, unset {set}")));
        assert!(!cwd.path().join("o").exists(), "exported anyway");

        let doctor = dify_crawl(cwd.path(), &["doctor"], &[(set, value)]).await;
        assert_eq!(doctor.code, 1);
        assert!(doctor.stdout.contains(&format!("FAIL  {message}")), "{}", doctor.stdout);
    }
    assert_eq!(site.total_hits(), 0);
    assert_eq!(server.stats().requests_total, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_flags_a_base_url_that_is_not_the_dify_api() {
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    // The client adds /v1, but a wrong prefix before it still leads to an
    // HTML 404 page.
    for base in [format!("http://{}/dify", server.addr()), format!("http://{}/x/v1", server.addr())]
    {
        let env = [("DIFY_BASE_URL", base.as_str()), ("DIFY_API_KEY", server.api_key())];
        let run = dify_crawl(cwd.path(), &["doctor"], &env).await;
        assert_eq!(run.code, 1, "{}", run.stdout);
        assert!(run.stdout.contains("FAIL  no Dify knowledge API at"), "{}", run.stdout);
        assert!(run.stdout.contains("answered 404"), "{}", run.stdout);
        assert!(run.stdout.contains("fix: set DIFY_BASE_URL to the API base"), "{}", run.stdout);
        assert!(!run.stdout.contains("API key accepted"), "{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_flags_a_failing_dify() {
    let server = DifyServer::start().await.unwrap();
    let always = FaultRule::always(Some(routes::LIST_DATASETS), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![always]));
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let run = dify_crawl(cwd.path(), &["doctor"], &env_refs(&env)).await;
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  Dify answered 500 (a server error)"), "{}", run.stdout);
    assert!(run.stdout.contains("fix: Dify itself is failing"), "{}", run.stdout);
    assert!(!run.stdout.contains("API key accepted"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_warns_when_a_knowledge_base_uses_another_indexing_technique() {
    let site = TestSite::plain(1).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);
    std::fs::write(
        cwd.path().join("economy.toml"),
        "[knowledge_base]\nindexing_technique = \"economy\"\n",
    )
    .unwrap();
    std::fs::write(
        cwd.path().join("high.toml"),
        "[knowledge_base]\nindexing_technique = \"high_quality\"\n",
    )
    .unwrap();
    let args = ["crawl", &url(&site), "--kb", "Docs", "--delay", "0", "--config", "economy.toml"];
    assert_eq!(dify_crawl(cwd.path(), &args, &env).await.code, 0);

    let same =
        dify_crawl(cwd.path(), &["doctor", "--kb", "Docs", "--config", "economy.toml"], &env).await;
    assert_eq!(same.code, 0, "{}", same.stdout);
    assert!(
        same.stdout.contains(
            "ok    knowledge base \"Docs\": exists, API access on, indexing economy, 2 documents"
        ),
        "{}",
        same.stdout
    );

    let other =
        dify_crawl(cwd.path(), &["doctor", "--kb", "Docs", "--config", "high.toml"], &env).await;
    assert_eq!(other.code, 0, "a mismatch works, only not as configured: {}", other.stdout);
    assert!(
        other.stdout.contains(
            "WARN  knowledge base \"Docs\": indexing economy, but the config asks for high_quality"
        ),
        "{}",
        other.stdout
    );
    assert!(
        other.stdout.contains("fix: set [knowledge_base].indexing_technique = \"economy\""),
        "{}",
        other.stdout
    );
}

/// A stand-in for a Dify whose knowledge bases have API access switched
/// off: `Locked` says so in the listing, `Older` (a server that does not
/// list the flag) only when read. Answers every request on a fresh
/// connection from a thread.
fn serve_api_access_disabled() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};

    const LOCKED: &str = "11111111-1111-4111-8111-111111111111";
    const OLDER: &str = "22222222-2222-4222-8222-222222222222";
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").split('?').next().unwrap();
            let (status, body) = match path {
                "/v1/datasets" => (
                    "200 OK",
                    format!(
                        r#"{{"data":[{{"id":"{LOCKED}","name":"Locked","enable_api":false,"indexing_technique":"economy"}},{{"id":"{OLDER}","name":"Older","indexing_technique":"economy"}}],"has_more":false,"limit":100,"total":2,"page":1}}"#
                    ),
                ),
                p if p == format!("/v1/datasets/{OLDER}") => (
                    "403 FORBIDDEN",
                    r#"{"code":"forbidden","message":"Dataset api access is not enabled.","status":403}"#
                        .to_owned(),
                ),
                _ => ("404 NOT FOUND", r#"{"code":"not_found","message":"no","status":404}"#.to_owned()),
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Version: 1.13.2\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_flags_knowledge_bases_without_api_access() {
    let addr = serve_api_access_disabled();
    let cwd = tempfile::tempdir().unwrap();
    let base = format!("http://{addr}/v1");
    let env = [("DIFY_BASE_URL", base.as_str()), ("DIFY_API_KEY", "dataset-any")];
    let args = ["doctor", "--kb", "Locked", "--kb", "Older"];
    let run = dify_crawl(cwd.path(), &args, &env).await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("API key accepted (Dify version 1.13.2)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAIL  knowledge base \"Locked\": API access is disabled"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("FAIL  knowledge base \"Older\": Dify refuses API access"));
    assert!(run.stdout.contains("Dataset api access is not enabled."), "{}", run.stdout);
    let fixes = run.stdout.matches("fix: in Dify, open Knowledge > ").count();
    assert_eq!(fixes, 2, "{}", run.stdout);
    assert!(run.stdout.contains("switch API access on"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_resends_pages_whose_dify_write_failed() {
    let site = TestSite::new().page("/", article_page("Only", 1, 4, &[])).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);
    let always = FaultRule::always(Some(routes::CREATE_BY_TEXT), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![always]));

    let args = ["crawl", &url(&site), "--kb", "Docs", "--delay", "0"];
    let run = dify_crawl(cwd.path(), &args, &env).await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("1 page(s) failed"), "{}", run.stdout);
    let status = dify_crawl(cwd.path(), &["status"], &env).await;
    assert!(status.stdout.contains("Failed pages (1), `dify-crawl retry` re-attempts them:"));
    let failed = format!("  {} [write]: ", url(&site));
    assert!(status.stdout.contains(&failed), "{}", status.stdout);

    server.clear_faults();
    let hits = site.total_hits();
    let retry = dify_crawl(cwd.path(), &["retry"], &env).await;
    assert_eq!(retry.code, 0, "{}{}", retry.stdout, retry.stderr);
    assert_eq!(
        retry.stdout.trim(),
        "Resent 1 stored page(s): 1 created, 0 updated, 0 unchanged, 0 blocked, 0 failed"
    );
    assert_eq!(site.total_hits(), hits, "retry fetched the page again");
    let dataset = server.dataset_by_name("Docs").unwrap();
    assert_eq!(server.documents(&dataset.id).len(), 1);
    let status = dify_crawl(cwd.path(), &["status"], &env).await;
    assert_eq!(status.stdout, "Knowledge base \"Docs\": 1 pages (synced 1)\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_state_file_is_rebuilt_without_recreating_documents() {
    let site = TestSite::plain(3).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);
    let args = ["crawl", &url(&site), "--kb", "Docs", "--delay", "0", "--state", "s.db"];
    assert_eq!(dify_crawl(cwd.path(), &args, &env).await.code, 0);

    for file in ["s.db", "s.db-wal", "s.db-shm"] {
        let _ = std::fs::remove_file(cwd.path().join(file));
    }
    server.reset_stats();
    let mut again = args.to_vec();
    again.push("--reconcile");
    let run = dify_crawl(cwd.path(), &again, &env).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let stats = server.stats();
    assert_eq!(stats.requests(routes::CREATE_BY_TEXT), 0, "{:?}", stats.requests_by_route);
    assert_eq!(stats.requests(routes::UPDATE_BY_TEXT), 0, "{:?}", stats.requests_by_route);
    let dataset = server.dataset_by_name("Docs").unwrap();
    assert_eq!(server.documents(&dataset.id).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_routes_pages_and_out_exports_alongside_dify() {
    let site = TestSite::plain(3).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let config = "[crawl]\ndelay_ms = 0\n\n[[route]]\nknowledge_base = \"First\"\n\
                  path_prefix = \"/page/1\"\n\n[[route]]\nknowledge_base = \"Rest\"\n\
                  glob = \"/page/*\"\n";
    std::fs::write(cwd.path().join("dify-crawl.toml"), config).unwrap();
    let env = dify_env(&server);
    let run = dify_crawl(cwd.path(), &["crawl", &url(&site), "--out", "o"], &env_refs(&env)).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    let count = |name: &str| server.documents(&server.dataset_by_name(name).unwrap().id).len();
    assert_eq!(count("First"), 1);
    assert_eq!(count("Rest"), 2);
    let home_kb = format!("127.0.0.1:{}", site.addr().port());
    assert_eq!(count(&home_kb), 1, "the home page falls back to its host");
    let manifest = std::fs::read_to_string(cwd.path().join("o/manifest.jsonl")).unwrap();
    assert_eq!(manifest.lines().count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dotenv_file_in_the_working_directory_configures_dify() {
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let dotenv =
        format!("DIFY_BASE_URL={}\nDIFY_API_KEY={}\n", server.base_url(), server.api_key());
    std::fs::write(cwd.path().join(".env"), dotenv).unwrap();
    let run = dify_crawl(cwd.path(), &["doctor"], &[]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("API key accepted"), "{}", run.stdout);
    assert!(!run.stdout.contains(server.api_key()), "key printed: {}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_leaves_no_state_file() {
    let site = TestSite::plain(2).start().await;
    let server = DifyServer::start().await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = dify_env(&server);
    let env = env_refs(&env);
    let state = cwd.path().join(kb_sync::state::DEFAULT_STATE_PATH);
    let crawl = ["crawl", &url(&site), "--kb", "Docs", "--delay", "0"];
    let dry: Vec<&str> = crawl.iter().copied().chain(["--dry-run", "--prune"]).collect();

    let first = dify_crawl(cwd.path(), &dry, &env).await;
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let plan = "knowledge base \"Docs\": 3 new, 0 changed, 0 unchanged, 0 failed, 0 pruned";
    assert!(first.stdout.contains(plan), "{}", first.stdout);
    assert!(!state.exists(), "a dry run creates no state file");

    let sync = dify_crawl(cwd.path(), &crawl, &env).await;
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    assert!(state.exists());

    // Lost state and a removed page: the plan comes from Dify's listing.
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(
            cwd.path().join(format!("{}{suffix}", kb_sync::state::DEFAULT_STATE_PATH)),
        );
    }
    site.remove_page("/page/2");
    let before = server.stats();
    let second = dify_crawl(cwd.path(), &dry, &env).await;
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let plan = "knowledge base \"Docs\": 0 new, 0 changed, 2 unchanged, 0 failed, 1 pruned";
    assert!(second.stdout.contains(plan), "{}", second.stdout);
    assert!(!state.exists(), "a dry run creates no state file");
    let stats = server.stats();
    for route in [routes::CREATE_BY_TEXT, routes::UPDATE_BY_TEXT, routes::DELETE_DOCUMENT] {
        assert_eq!(stats.requests(route), before.requests(route), "{route}");
    }
    assert_eq!(server.documents(&server.dataset_by_name("Docs").unwrap().id).len(), 3);
}
