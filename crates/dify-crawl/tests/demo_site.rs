//! The offline demo (`scripts/demo`) crawls `demo/site` with the plain
//! `crawl --out` command. This runs the same crawl through the built binary,
//! so the sample site and the README's first command stay true.

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::static_site::serve_dir;

fn demo_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo/site")
}

async fn crawl(cwd: &Path, start: &str) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dify-crawl"));
    command.args(["crawl", start, "--out", "site", "--delay", "0"]).current_dir(cwd).env_clear();
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Files under `dir` with their contents, by path relative to `dir`.
fn markdown_files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                found.push((relative, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_site_crawls_into_clean_markdown_and_reruns_unchanged() {
    let site = serve_dir(&demo_site(), 0).await.unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let start = site.base_url().to_string();

    let (code, stdout) = crawl(cwd.path(), &start).await;
    assert_eq!(code, 0, "{stdout}");

    let host = format!("127.0.0.1_{}", site.addr().port());
    let files = markdown_files(&cwd.path().join("site"));
    let names: Vec<_> = files.iter().map(|(name, _)| name.as_str()).collect();
    let expected = [
        "faq.md",
        "guide/first-crawl.md",
        "guide/install.md",
        "guide/sync-to-dify.md",
        "index.md",
        "reference/configuration.md",
        "reference/exit-codes.md",
    ]
    .map(|name| format!("{host}/{name}"));
    assert_eq!(names, expected.iter().map(String::as_str).collect::<Vec<_>>());

    // robots.txt keeps the crawler out of /drafts/, linked from every page.
    assert_eq!(site.hits("/drafts/unreleased.html"), 0);
    // The moved page is a broken link, reported as gone with its referrer.
    assert!(stdout.contains("old-troubleshooting.html [404] linked from"), "{stdout}");

    let install = &files.iter().find(|(name, _)| name.ends_with("install.md")).unwrap().1;
    assert!(install.contains("title: \"Installing\""), "{install}");
    assert!(install.contains("\n# Installing\n"), "{install}");
    assert!(install.contains("```sh\ngit clone"), "{install}");
    for boilerplate in ["We use cookies", "Search the handbook", "a sample site for the offline"] {
        assert!(!install.contains(boilerplate), "{boilerplate:?} left in:\n{install}");
    }
    let sync = &files.iter().find(|(name, _)| name.ends_with("sync-to-dify.md")).unwrap().1;
    let table = ["| Page state | Dify calls", "| ---------- | ---", "| Unchanged  | none"];
    assert!(table.iter().all(|row| sync.contains(row)), "header-less table kept:\n{sync}");

    // A second run gets 304s and rewrites nothing.
    let before: Vec<_> = files.iter().map(|(name, _)| name.clone()).collect();
    let (code, stdout) = crawl(cwd.path(), &start).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("0 new, 0 changed, 7 unchanged"), "{stdout}");
    let after = markdown_files(&cwd.path().join("site"));
    assert_eq!(after.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>(), before);
    assert_eq!(after, files, "an unchanged site leaves every file as it was");
}
