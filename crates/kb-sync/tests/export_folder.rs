//! Folder export: layout, front matter, manifest, in-place updates, pruning.

use std::fs;
use std::path::Path;

use kb_sync::export::{
    EntryStatus, ExportOutcome, FolderSink, MANIFEST_CHECKPOINT_PAGES, MANIFEST_FILE,
    ManifestEntry, Prune,
};
use kb_sync::page::PageRecord;
use time::macros::datetime;
use url::Url;

fn page(url: &str, title: &str, markdown: &str) -> PageRecord {
    PageRecord {
        url: Url::parse(url).unwrap(),
        knowledge_base: "Docs".into(),
        title: Some(title.into()),
        description: Some("A page".into()),
        language: Some("en".into()),
        published: None,
        modified: None,
        markdown: markdown.into(),
        content_hash: PageRecord::hash_content(markdown),
        word_count: markdown.split_whitespace().count() as u64,
        etag: None,
        last_modified: None,
        sitemap_lastmod: None,
        crawled_at: datetime!(2026-12-03 18:00:00 UTC),
        links: Vec::new(),
    }
}

fn manifest(dir: &Path) -> Vec<ManifestEntry> {
    fs::read_to_string(dir.join(MANIFEST_FILE))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The front matter's `key: value` lines, with double-quoted values
/// unescaped the way a YAML parser reads them.
fn front_matter(file: &str) -> Vec<(String, String)> {
    let body = file.strip_prefix("---\n").expect("front matter opens the file");
    let (yaml, _) = body.split_once("\n---\n").expect("front matter is closed");
    yaml.lines()
        .map(|line| {
            let (key, value) = line.split_once(": ").expect("key: value");
            (key.to_owned(), unquote(value))
        })
        .collect()
}

fn unquote(value: &str) -> String {
    let inner = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).expect("quoted");
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        assert_ne!(c, '"', "unescaped quote inside {value}");
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().unwrap() {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'L' => out.push('\u{2028}'),
            'P' => out.push('\u{2029}'),
            'N' => out.push('\u{85}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn pages_land_in_a_url_shaped_tree_with_front_matter_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://docs.example.com/", "Home", "# Home\n\nWelcome.")).unwrap();
    sink.write(&page("https://docs.example.com/guide/install.html", "Install", "Steps.")).unwrap();
    sink.write(&page("https://docs.example.com/guide/", "Guide", "Guide.")).unwrap();
    let counts = sink.finish(Prune::Nothing, true).unwrap();
    assert_eq!((counts.new, counts.changed, counts.unchanged), (3, 0, 0));

    let install = fs::read_to_string(dir.path().join("docs.example.com/guide/install.md")).unwrap();
    let fields = front_matter(&install);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["url", "title", "description", "language", "crawled_at", "content_hash"]);
    assert_eq!(fields[0].1, "https://docs.example.com/guide/install.html");
    assert_eq!(fields[4].1, "2026-12-03T18:00:00Z");
    assert_eq!(fields[5].1, PageRecord::hash_content("Steps."));
    assert!(install.ends_with("---\n\nSteps.\n"));
    assert!(dir.path().join("docs.example.com/index.md").is_file());
    assert!(dir.path().join("docs.example.com/guide/index.md").is_file());

    let entries = manifest(dir.path());
    assert_eq!(entries.len(), 3);
    let install_entry = entries.iter().find(|e| e.url.ends_with("install.html")).unwrap();
    assert_eq!(install_entry.path, "docs.example.com/guide/install.md");
    assert_eq!(install_entry.title.as_deref(), Some("Install"));
    assert_eq!(install_entry.status, EntryStatus::Exported);
    assert_eq!(install_entry.hash, PageRecord::hash_content("Steps."));
}

#[test]
fn titles_with_yaml_syntax_stay_one_valid_scalar() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FolderSink::open(dir.path()).unwrap();
    let title = "Rust: \"quotes\", 'apostrophes', # hash, \\ backslash\nnew line\u{2028}- dash";
    sink.write(&page("https://x.example/a", title, "Body.")).unwrap();

    let file = fs::read_to_string(dir.path().join("x.example/a.md")).unwrap();
    let fields = front_matter(&file);
    assert_eq!(fields[1], ("title".to_owned(), title.to_owned()));
}

#[test]
fn hostile_titles_and_descriptions_stay_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FolderSink::open(dir.path()).unwrap();
    let hostile = [
        "- starts like a list item",
        "# starts like a comment",
        "key: value: more",
        "\"fully quoted\"",
        "trailing backslash \\",
        "\\\"escaped quote in the source",
        "line one\r\nline two\rthree\u{85}four\u{2029}five",
        "controls \u{0}\u{1}\u{1b}[31m\u{7f}\u{9b} tab\there",
        "\u{feff}bom and non-characters \u{fffe}\u{ffff}",
        "---",
        "& anchor * alias ! tag | block > folded % directive @ `",
        "",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let mut record = page(&format!("https://x.example/p{i}"), text, "Body.");
        record.description = Some(format!("{text} (description)"));
        sink.write(&record).unwrap();

        let file = fs::read_to_string(dir.path().join(format!("x.example/p{i}.md"))).unwrap();
        let fields = front_matter(&file);
        assert_eq!(fields.len(), 6, "{file:?}");
        assert_eq!(fields[1], ("title".to_owned(), (*text).to_owned()), "{file:?}");
        assert_eq!(fields[2].1, format!("{text} (description)"), "{file:?}");
        let yaml = file.split("\n---\n").next().unwrap();
        assert!(yaml.chars().all(|c| c == '\n' || !c.is_control()), "{yaml:?}");
    }
}

#[test]
fn urls_cannot_write_outside_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    let sink = FolderSink::open(&dir).unwrap();
    let hostile = [
        "https://x.example/../../escape",
        "https://x.example/%2e%2e/%2e%2e/escape",
        "https://x.example/%2E%2E%2F%2E%2E%2Fescape",
        "https://x.example/a/..%2F..%2F..%2Fescape",
        "https://x.example/..%5C..%5Cescape",
        "https://x.example/%252e%252e/escape",
        "https://x.example/.%2e/.%2E/escape",
        "https://x.example/%00/%2F%2F/escape",
        "https://x.example/~/.ssh/authorized_keys",
        "http://[::1]:8080/../escape",
    ];
    for url in hostile {
        sink.write(&page(url, "t", "Body.")).unwrap();
    }
    sink.finish(Prune::Nothing, true).unwrap();

    let outside: Vec<String> = fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(outside, ["out"], "something was written beside the export folder");
    let entries = manifest(&dir);
    let distinct: std::collections::HashSet<String> =
        hostile.iter().map(|u| Url::parse(u).unwrap().to_string()).collect();
    assert_eq!(entries.len(), distinct.len(), "{entries:?}");
    for entry in entries {
        assert!(entry.path.split('/').all(|s| !s.is_empty() && !s.starts_with('.')), "{entry:?}");
        let file = dir.join(&entry.path).canonicalize().unwrap();
        assert!(file.starts_with(dir.canonicalize().unwrap()), "{entry:?}");
    }
}

#[test]
fn paths_differing_only_in_case_get_their_own_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        sink.write(&page("https://x.example/Guide", "Upper", "Upper.")).unwrap();
        sink.write(&page("https://x.example/guide", "Lower", "Lower.")).unwrap();
        sink.finish(Prune::Nothing, true).unwrap();
    }
    let entries = manifest(dir.path());
    let folded: std::collections::HashSet<String> =
        entries.iter().map(|e| e.path.to_lowercase()).collect();
    assert_eq!(folded.len(), 2, "one file for both on a case-insensitive disk: {entries:?}");

    // The lower-case page goes away; pruning it keeps the other's file.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://x.example/Guide", "Upper", "Upper.")).unwrap();
    assert_eq!(sink.finish(Prune::GoneAndUnseen, true).unwrap().pruned, 1);
    let left = manifest(dir.path());
    assert_eq!(left.len(), 1);
    let file = fs::read_to_string(dir.path().join(&left[0].path)).unwrap();
    assert!(file.ends_with("Upper.\n"), "{file}");
}

#[test]
fn a_killed_run_leaves_a_manifest_matching_the_files_and_the_rest_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let url = |i: usize| format!("https://x.example/p/{i}");
    let total = MANIFEST_CHECKPOINT_PAGES + 3;
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        for i in 0..total {
            sink.write(&page(&url(i), "t", &format!("Text {i}."))).unwrap();
        }
        // Dropped without finish, as when the process is killed.
    }
    let saved = manifest(dir.path());
    assert_eq!(saved.len(), MANIFEST_CHECKPOINT_PAGES, "saved mid-run");
    for entry in &saved {
        let file = fs::read_to_string(dir.path().join(&entry.path)).unwrap();
        assert!(file.contains(&format!("content_hash: \"{}\"", entry.hash)), "{entry:?}");
    }

    // The next run learns the files the manifest missed from their front
    // matter: an incomplete run keeps them, a complete one that saw none of
    // them prunes every one.
    FolderSink::open(dir.path()).unwrap().finish(Prune::GoneAndUnseen, false).unwrap();
    let recovered = manifest(dir.path());
    assert_eq!(recovered.len(), total);
    let last = recovered.iter().find(|e| e.url == url(total - 1)).unwrap();
    assert_eq!(last.hash, kb_sync::page::PageRecord::hash_content(&format!("Text {}.", total - 1)));
    assert_eq!(last.status, EntryStatus::Exported);

    let counts = FolderSink::open(dir.path()).unwrap().finish(Prune::GoneAndUnseen, true).unwrap();
    assert_eq!(counts.pruned, total as u64);
    assert!(!dir.path().join("x.example").exists(), "files left behind");
}

#[test]
fn only_a_complete_run_marks_unseen_pages_stale() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        for name in ["a", "b", "c"] {
            sink.write(&page(&format!("https://x.example/{name}"), name, "Text.")).unwrap();
        }
        sink.finish(Prune::Nothing, true).unwrap();
    }

    // A cancelled run that reached only a: b and c are not stale, and even
    // a pruning request leaves them alone.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://x.example/a", "a", "Text.")).unwrap();
    let counts = sink.finish(Prune::GoneAndUnseen, false).unwrap();
    assert_eq!((counts.stale, counts.pruned), (0, 0));
    let entries = manifest(dir.path());
    assert!(entries.iter().all(|e| e.status == EntryStatus::Exported), "{entries:?}");
    assert!(dir.path().join("x.example/c.md").is_file());

    // A complete run marks them.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://x.example/a", "a", "Text.")).unwrap();
    assert_eq!(sink.finish(Prune::Nothing, true).unwrap().stale, 2);
}

#[test]
fn rerun_rewrites_only_changed_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("x.example/a.md");
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        sink.write(&page("https://x.example/a", "A", "Alpha.")).unwrap();
        sink.write(&page("https://x.example/b", "B", "Beta.")).unwrap();
        sink.finish(Prune::Nothing, true).unwrap();
    }
    let before = fs::read_to_string(&a).unwrap();

    let sink = FolderSink::open(dir.path()).unwrap();
    let mut later = page("https://x.example/a", "A", "Alpha.");
    later.crawled_at = datetime!(2026-12-04 09:00:00 UTC);
    assert_eq!(sink.write(&later).unwrap(), ExportOutcome::Unchanged);
    let changed = page("https://x.example/b", "B", "Beta, revised.");
    assert_eq!(sink.write(&changed).unwrap(), ExportOutcome::Changed);
    let counts = sink.finish(Prune::Nothing, true).unwrap();

    assert_eq!((counts.new, counts.changed, counts.unchanged), (0, 1, 1));
    assert_eq!(fs::read_to_string(&a).unwrap(), before, "unchanged page was rewritten");
    let b = fs::read_to_string(dir.path().join("x.example/b.md")).unwrap();
    assert!(b.contains("Beta, revised."));
    let entries = manifest(dir.path());
    assert_eq!(
        entries.iter().find(|e| e.url.ends_with("/b")).unwrap().hash,
        PageRecord::hash_content("Beta, revised.")
    );
    assert!(!dir.path().join(format!(".{MANIFEST_FILE}.tmp")).exists());
}

#[test]
fn unseen_and_gone_pages_are_kept_until_pruned() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        for name in ["a", "b", "c", "deep/d"] {
            sink.write(&page(&format!("https://x.example/{name}"), name, "Text.")).unwrap();
        }
        sink.finish(Prune::Nothing, true).unwrap();
    }

    // Second run: a is fetched, b answers 404, c and deep/d are not seen.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://x.example/a", "a", "Text.")).unwrap();
    sink.gone(&Url::parse("https://x.example/b").unwrap());
    let counts = sink.finish(Prune::Nothing, true).unwrap();
    assert_eq!(counts.stale, 2);
    let statuses: Vec<(String, EntryStatus)> =
        manifest(dir.path()).into_iter().map(|e| (e.url, e.status)).collect();
    assert!(statuses.contains(&("https://x.example/b".into(), EntryStatus::Gone)));
    assert!(statuses.contains(&("https://x.example/c".into(), EntryStatus::Stale)));
    assert!(dir.path().join("x.example/b.md").is_file());

    // Third run prunes gone pages only.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.gone(&Url::parse("https://x.example/b").unwrap());
    assert_eq!(sink.finish(Prune::Gone, true).unwrap().pruned, 1);
    assert!(!dir.path().join("x.example/b.md").exists());
    assert!(dir.path().join("x.example/c.md").exists());

    // Fourth run, after a complete crawl that saw only a: everything else goes.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page("https://x.example/a", "a", "Text.")).unwrap();
    assert_eq!(sink.finish(Prune::GoneAndUnseen, true).unwrap().pruned, 2);
    assert!(!dir.path().join("x.example/deep").exists(), "empty folder left behind");
    let urls: Vec<String> = manifest(dir.path()).into_iter().map(|e| e.url).collect();
    assert_eq!(urls, ["https://x.example/a"]);
}

#[test]
fn not_modified_keeps_the_file_and_reports_unknown_pages() {
    let dir = tempfile::tempdir().unwrap();
    let known = Url::parse("https://x.example/a").unwrap();
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        sink.write(&page(known.as_str(), "a", "Text.")).unwrap();
        sink.finish(Prune::Nothing, true).unwrap();
    }
    let sink = FolderSink::open(dir.path()).unwrap();
    assert!(sink.has_page(&known));
    assert!(sink.not_modified(&known));
    assert!(!sink.not_modified(&Url::parse("https://x.example/never").unwrap()));
    let counts = sink.finish(Prune::GoneAndUnseen, true).unwrap();
    assert_eq!((counts.unchanged, counts.new, counts.pruned), (1, 0, 0), "a 304 is unchanged");
    assert_eq!(manifest(dir.path())[0].status, EntryStatus::NotModified);
}

#[test]
fn the_manifest_keeps_links_for_the_next_runs_validators() {
    let dir = tempfile::tempdir().unwrap();
    let linked = PageRecord {
        etag: Some("\"v1\"".into()),
        links: vec!["https://x.example/b".into()],
        ..page("https://x.example/a", "a", "Text.")
    };
    let leaf =
        PageRecord { etag: Some("\"v2\"".into()), ..page("https://x.example/b", "b", "Leaf.") };
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        sink.write(&linked).unwrap();
        sink.write(&leaf).unwrap();
        sink.finish(Prune::Nothing, true).unwrap();
    }
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        let validators = sink.validators();
        assert_eq!(validators[linked.url.as_str()].links, linked.links);
        assert_eq!(validators[leaf.url.as_str()].etag.as_deref(), Some("\"v2\""));
        assert!(validators[leaf.url.as_str()].links.is_empty());
        assert!(sink.not_modified(&linked.url));
        sink.finish(Prune::Nothing, true).unwrap();
    }
    let entries = manifest(dir.path());
    assert_eq!(entries[0].links.as_deref(), Some(&linked.links[..]), "a 304 keeps the links");

    // A line from before links were kept: the page gets no validators, so
    // it is fetched in full (and its links learnt) instead of answering 304.
    let old_line = r#"{"url":"https://x.example/a","path":"x.example/a.md","status":"exported","hash":"h","etag":"\"v1\""}"#;
    fs::write(dir.path().join(MANIFEST_FILE), format!("{old_line}\n")).unwrap();
    assert!(FolderSink::open(dir.path()).unwrap().validators().is_empty());
}

#[test]
fn colliding_urls_get_distinct_files_that_stay_stable() {
    let dir = tempfile::tempdir().unwrap();
    let first = "https://x.example/a.html";
    let second = "https://x.example/a";
    {
        let sink = FolderSink::open(dir.path()).unwrap();
        sink.write(&page(first, "1", "First.")).unwrap();
        sink.write(&page(second, "2", "Second.")).unwrap();
        sink.finish(Prune::Nothing, true).unwrap();
    }
    let paths = |dir: &Path| -> Vec<String> {
        let mut entries = manifest(dir);
        entries.sort_by(|a, b| a.url.cmp(&b.url));
        entries.into_iter().map(|e| e.path).collect()
    };
    let before = paths(dir.path());
    assert_ne!(before[0], before[1]);

    // Written in the other order, each URL keeps the file it was given.
    let sink = FolderSink::open(dir.path()).unwrap();
    sink.write(&page(second, "2", "Second.")).unwrap();
    sink.write(&page(first, "1", "First.")).unwrap();
    sink.finish(Prune::Nothing, true).unwrap();
    assert_eq!(paths(dir.path()), before);
}

#[test]
fn a_tampered_manifest_cannot_make_pruning_escape_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("out");
    fs::create_dir_all(&dir).unwrap();
    let victim = root.path().join("victim.md");
    fs::write(&victim, "keep me").unwrap();
    let line = r#"{"url":"https://x.example/v","path":"../victim.md","status":"gone","hash":"h"}"#;
    fs::write(dir.join(MANIFEST_FILE), format!("{line}\n")).unwrap();

    let sink = FolderSink::open(&dir).unwrap();
    sink.finish(Prune::GoneAndUnseen, true).unwrap();
    assert!(victim.exists());
}
