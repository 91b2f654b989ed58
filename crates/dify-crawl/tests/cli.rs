//! The built binary against a generated site and the Dify test server, all
//! on 127.0.0.1. Every spawned process gets a cleared environment and a
//! fresh working directory, so nothing from the developer's shell, `.env`
//! or config file leaks in.

use std::path::Path;
use std::process::{Command, Output};

use test_support::dify::{DifyServer, routes};
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
