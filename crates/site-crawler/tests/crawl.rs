//! Crawl behaviour: scope, limits, dedup, politeness, flow control.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use site_crawler::{
    CrawlConfig, CrawlError, CrawlEvent, Crawler, FailKind, SkipReason, Validators,
};
use support::{config, crawl, event_for, page_paths, pages};
use test_support::site::{Route, TestSite, article_page, large_page_path, plain_page_path};
use tokio_util::sync::CancellationToken;

fn page_with(head: &str, links: &[&str]) -> String {
    let links: Vec<(String, String)> =
        links.iter().map(|l| ((*l).to_owned(), (*l).to_owned())).collect();
    article_page("Test", 1, 2, &links).replace("<head>", &format!("<head>{head}"))
}

#[tokio::test]
async fn plain_site_is_crawled_completely_and_breadth_first() {
    let site = TestSite::plain(5).start().await;
    let (events, stats) = crawl(config(&site, "/")).await;

    let mut expected: Vec<String> = (1..=5).map(plain_page_path).collect();
    expected.insert(0, "/".into());
    assert_eq!(page_paths(&events), expected);
    assert_eq!((stats.pages, stats.skipped_total(), stats.failed_total()), (6, 0, 0));
    let home = &pages(&events)[0];
    assert_eq!((home.url.path(), home.depth, home.status), ("/", 0, 200));
    assert!(pages(&events)[1..].iter().all(|page| page.depth == 1));
    assert_eq!(home.links_found, 6, "itself and five pages");
    assert!(home.html.contains("<article>"));
    assert_eq!(site.hits("/page/3"), 1, "each page fetched once");
}

#[tokio::test]
async fn max_pages_is_exact_with_concurrency() {
    let site = TestSite::large(2_000).start().await;
    for max_pages in [1, 7, 37] {
        let mut config = config(&site, &large_page_path(0));
        (config.max_pages, config.concurrency, config.per_host) = (max_pages, 16, 16);
        let (events, stats) = crawl(config).await;
        // Every page's header links to `/`, which redirects to the root:
        // fetching it is a request like any other, skipped as a duplicate.
        assert_eq!(events.len(), max_pages, "one event per request: {events:?}");
        assert_eq!(stats.pages_requested as usize, max_pages);
        let skipped = stats.skipped.get("duplicate").copied().unwrap_or(0) as usize;
        assert_eq!(pages(&events).len() + skipped, max_pages);
        assert!(skipped <= 1, "{stats:?}");
        assert!(stats.page_limit_reached);
    }
}

#[tokio::test]
async fn max_depth_is_respected() {
    let site = TestSite::large(1_000).start().await;
    let mut config = config(&site, &large_page_path(0));
    config.max_depth = 1;
    let (events, _) = crawl(config).await;
    assert_eq!(pages(&events).len(), 11, "the root and its ten children");
    assert_eq!(site.hits(&large_page_path(11)), 0);
}

#[tokio::test]
async fn include_and_exclude_patterns_limit_discovery() {
    let site = TestSite::plain(6).start().await;
    let mut config = config(&site, "/");
    config.include = vec!["/page/[1-4]$".into()];
    config.exclude = vec!["/page/2$".into()];
    let (events, _) = crawl(config).await;
    assert_eq!(page_paths(&events), ["/", "/page/1", "/page/3", "/page/4"]);
}

#[tokio::test]
async fn robots_disallow_is_obeyed_and_never_requested() {
    let robots = "User-agent: *\nDisallow: /page/2\n\nUser-agent: dify-crawl\nDisallow: /page/3\n";
    let site =
        TestSite::plain(4).route("/robots.txt", Route::bytes("text/plain", robots)).start().await;
    let (events, stats) = crawl(config(&site, "/")).await;

    assert_eq!(
        page_paths(&events),
        ["/", "/page/1", "/page/2", "/page/4"],
        "our group replaces `*`"
    );
    let Some(CrawlEvent::Skipped(skipped)) = event_for(&events, "/page/3") else {
        panic!("expected a robots skip: {events:?}");
    };
    assert_eq!(skipped.reason, SkipReason::RobotsDisallowed);
    assert_eq!(site.hits("/page/3"), 0);
    assert_eq!((site.hits("/robots.txt"), stats.robots_fetches), (1, 1), "cached per host");
}

#[tokio::test]
async fn robots_5xx_closes_the_host_and_4xx_opens_it() {
    let site = TestSite::plain(2).route("/robots.txt", Route::status(503)).start().await;
    let mut config_5xx = config(&site, "/");
    config_5xx.max_retries = 0;
    config_5xx.robots_retry = Duration::ZERO;
    let (events, _) = crawl(config_5xx).await;
    assert!(
        matches!(&events[..], [CrawlEvent::Failed(f)] if f.kind == FailKind::RobotsUnavailable && f.error.contains("503")),
        "{events:?}"
    );
    assert_eq!(site.hits("/"), 0);
    assert_eq!(site.hits("/robots.txt"), 3, "fetched again before giving up");

    site.set_route("/robots.txt", Route::status(403));
    let (events, _) = crawl(config(&site, "/")).await;
    assert_eq!(pages(&events).len(), 3);
}

#[tokio::test]
async fn ignoring_robots_fetches_disallowed_pages() {
    let site = TestSite::plain(2)
        .route("/robots.txt", Route::bytes("text/plain", "User-agent: *\nDisallow: /\n"))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.respect_robots = false;
    let (events, _) = crawl(config).await;
    assert_eq!(pages(&events).len(), 3);
    assert_eq!(site.hits("/robots.txt"), 0);
}

#[tokio::test]
async fn malformed_robots_and_sitemap_are_survived() {
    let site = TestSite::plain(2)
        .route(
            "/robots.txt",
            Route::bytes(
                "text/plain",
                &b"\xff\xfe<html>User-agent *\nDisallow /\nSitemap: ::bad::\n"[..],
            ),
        )
        .route(
            "/sitemap.xml",
            Route::bytes(
                "application/xml",
                "<urlset><url><loc>http://localhost:1/x</loc></url><url><loc>",
            ),
        )
        .start()
        .await;
    let mut config = config(&site, "/");
    config.sitemaps = true;
    let (events, stats) = crawl(config).await;
    assert_eq!(pages(&events).len(), 3);
    assert_eq!(stats.sitemap_urls, 0, "the only sitemap url is out of scope");
}

#[tokio::test]
async fn sitemaps_seed_unlinked_pages_with_lastmod() {
    let site = TestSite::new().page("/", page_with("", &[])).start().await;
    let url = |path: &str| site.url(path).to_string();
    let urlset = test_support::site::sitemap_xml(&[
        (url("/from-xml"), Some("2026-11-30".into())),
        (url("/also-home?utm_source=sitemap"), None),
    ]);
    let index = test_support::site::sitemap_index(&[
        url("/sitemaps/pages.xml.gz"),
        url("/sitemaps/more.txt"),
    ]);
    let robots = format!("User-agent: *\nAllow: /\nSitemap: {}\n", url("/sitemaps/index.xml"));
    for path in ["/from-xml", "/from-txt", "/also-home"] {
        site.set_page(path, page_with("", &[]));
    }
    site.set_route("/robots.txt", Route::bytes("text/plain", robots));
    site.set_route("/sitemaps/index.xml", Route::bytes("application/xml", index));
    site.set_route(
        "/sitemaps/pages.xml.gz",
        Route::bytes("application/octet-stream", test_support::site::sitemap_gz(&urlset)),
    );
    site.set_route(
        "/sitemaps/more.txt",
        Route::bytes("text/plain", format!("{}\n", url("/from-txt"))),
    );

    let mut config = config(&site, "/");
    config.sitemaps = true;
    let (events, stats) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/", "/also-home", "/from-txt", "/from-xml"]);
    let from_xml = pages(&events).into_iter().find(|page| page.url.path() == "/from-xml").unwrap();
    assert_eq!(from_xml.sitemap_lastmod.as_deref(), Some("2026-11-30T00:00:00Z"));
    assert_eq!(stats.sitemap_urls, 3);
    assert_eq!(site.hits("/sitemap.xml"), 1, "the default location is tried too");
    assert_eq!(stats.sitemap_fetches, 4);
}

#[tokio::test]
async fn canonical_copies_defer_to_the_canonical_page() {
    let site = TestSite::new()
        .page("/", page_with("", &["/a", "/b", "/c?utm_source=x"]))
        .page("/a", page_with(r#"<link rel="canonical" href="/c">"#, &["/from-a"]))
        .page("/b", page_with(r#"<link rel="canonical" href="/c">"#, &[]))
        .page("/c", page_with("", &[]))
        .page("/from-a", page_with("", &[]))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.concurrency = 1;
    let (events, stats) = crawl(config).await;

    // Before, /a was emitted under /c's identity and /c itself was dropped
    // unfetched; now /c is fetched in its own right.
    assert_eq!(page_paths(&events), ["/", "/c", "/from-a"]);
    let c = pages(&events).into_iter().find(|page| page.url.path() == "/c").unwrap();
    assert_eq!(c.requested_url.path(), "/c");
    for copy in ["/a", "/b"] {
        let Some(CrawlEvent::Skipped(skipped)) = event_for(&events, copy) else {
            panic!("expected {copy} skipped: {events:?}");
        };
        assert_eq!(skipped.reason, SkipReason::Canonicalized { to: site.url("/c") });
    }
    assert_eq!(stats.skipped.get("canonicalized"), Some(&2));
    assert_eq!(stats.duplicates_dropped, 0);
    assert_eq!(site.hits("/c"), 1);
    assert_eq!(site.hits("/from-a"), 1, "a canonicalized page's links are followed");
}

#[tokio::test]
async fn a_canonical_target_fetched_later_keeps_its_own_links() {
    let site = TestSite::new()
        .page("/", page_with("", &["/list?page=2", "/list"]))
        .page("/list?page=2", page_with(r#"<link rel="canonical" href="/list">"#, &[]))
        .page("/list", page_with("", &["/only-from-list"]))
        .page("/only-from-list", page_with("", &[]))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.concurrency = 1;
    let (events, _) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/", "/list", "/only-from-list"]);
    assert_eq!(site.hits("/only-from-list"), 1);
}

#[tokio::test]
async fn an_unvisited_canonical_is_queued_and_an_emitted_one_makes_a_duplicate() {
    // Every page names `/` canonical: `/` is the start, so later pages are
    // duplicates of it; /hub names the unlinked /target, which is fetched.
    let site = TestSite::new()
        .page("/", page_with("", &["/a", "/hub"]))
        .page("/a", page_with(r#"<link rel="canonical" href="/">"#, &["/deeper"]))
        .page("/deeper", page_with(r#"<link rel="canonical" href="/">"#, &[]))
        .page("/hub", page_with(r#"<link rel="canonical" href="/target">"#, &[]))
        .page("/target", page_with("", &[]))
        .start()
        .await;
    let (events, stats) = crawl(config(&site, "/")).await;

    assert_eq!(page_paths(&events), ["/", "/target"]);
    assert_eq!(stats.skipped.get("duplicate"), Some(&2), "{events:?}");
    assert_eq!(site.hits("/deeper"), 1, "links of duplicates are followed");
    let target = pages(&events).into_iter().find(|page| page.url.path() == "/target").unwrap();
    assert_eq!(target.depth, 1, "queued at the depth of the page naming it");
}

#[tokio::test]
async fn a_canonical_out_of_reach_leaves_the_page_standing() {
    let robots = "User-agent: *\nDisallow: /private\n";
    let site = TestSite::new()
        .route("/robots.txt", Route::bytes("text/plain", robots))
        .page("/", page_with("", &["/a", "/b", "/c"]))
        .page("/a", page_with(r#"<link rel="canonical" href="/private/a">"#, &[]))
        .page("/b", page_with(r#"<link rel="canonical" href="https://elsewhere.example/b">"#, &[]))
        .page("/c", page_with(r#"<link rel="canonical" href="/c-moved">"#, &[]))
        .route("/c-moved", Route::redirect(301, "/c"))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.concurrency = 1;
    let (events, _) = crawl(config).await;

    // /a: disallowed canonical; /b: off-site canonical; /c: its canonical
    // redirects back to it, so /c stands for itself.
    assert_eq!(page_paths(&events), ["/", "/a", "/b", "/c"], "{events:?}");
    assert_eq!(site.hits("/private/a"), 0);
    let a = pages(&events).into_iter().find(|page| page.url.path() == "/a").unwrap();
    assert_eq!(a.canonical.as_ref().map(|url| url.path()), Some("/private/a"));
}

#[tokio::test]
async fn redirects_fold_into_the_target_identity() {
    let site = TestSite::new()
        .page("/", page_with("", &["/old", "/new"]))
        .route("/old", Route::redirect(301, "/new"))
        .page("/new", page_with("", &[]))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.concurrency = 1;
    let (events, stats) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/", "/new"]);
    let new = pages(&events).into_iter().find(|page| page.url.path() == "/new").unwrap();
    assert_eq!((new.requested_url.path(), new.final_url.path()), ("/old", "/new"));
    assert_eq!(stats.redirects, 1);
    assert_eq!(site.hits("/new"), 1, "the queued /new is dropped as already emitted");
}

#[tokio::test]
async fn noindex_pages_are_skipped_and_nofollow_links_not_followed() {
    let site = TestSite::new()
        .page("/", page_with(r#"<meta name="robots" content="noindex">"#, &["/a", "/b"]))
        .page("/a", page_with(r#"<meta name="robots" content="nofollow">"#, &["/hidden"]))
        .route("/b", Route::html(page_with("", &[])).with_header("x-robots-tag", "noindex"))
        .page("/hidden", page_with("", &[]))
        .start()
        .await;
    let (events, _) = crawl(config(&site, "/")).await;

    assert_eq!(page_paths(&events), ["/a"]);
    for path in ["/", "/b"] {
        assert!(
            matches!(event_for(&events, path), Some(CrawlEvent::Skipped(s)) if s.reason == SkipReason::NoIndex),
            "{path}"
        );
    }
    assert_eq!(site.hits("/hidden"), 0);
}

#[tokio::test]
async fn validators_make_conditional_requests() {
    let html = page_with("", &["/other"]);
    let site = TestSite::new()
        .route(
            "/",
            Route::html(html)
                .with_header("etag", "\"v1\"")
                .with_header("last-modified", "Tue, 01 Dec 2026 10:00:00 GMT"),
        )
        .page("/other", page_with("", &[]))
        .start()
        .await;
    let (events, _) = crawl(config(&site, "/")).await;
    let home = pages(&events).into_iter().find(|page| page.url.path() == "/").unwrap();
    assert_eq!(home.etag.as_deref(), Some("\"v1\""));

    let mut config = config(&site, "/");
    let validators = Validators {
        etag: home.etag.clone(),
        last_modified: home.last_modified.clone(),
        links: Vec::new(),
    };
    config.validators = HashMap::from([(home.url.to_string(), validators)]);
    let (events, stats) = crawl(config).await;

    let Some(CrawlEvent::NotModified(not_modified)) = event_for(&events, "/") else {
        panic!("expected not modified: {events:?}");
    };
    assert_eq!(not_modified.etag.as_deref(), Some("\"v1\""));
    assert!(not_modified.links.is_empty(), "no links were given with the validators");
    assert_eq!((stats.not_modified, stats.pages), (1, 0), "no links known, none followed");
    let last = site.request_headers("/").pop().unwrap();
    assert_eq!(last.get("if-none-match").unwrap(), "\"v1\"");
    assert_eq!(last.get("if-modified-since").unwrap(), "Tue, 01 Dec 2026 10:00:00 GMT");
}

/// A site whose every page has an ETag, so each answers 304 to its own
/// validators: `/` links to `/a` and `/b`, `/a` to `/c`, `/c` to `/d` and
/// off-site.
async fn tagged_site() -> test_support::site::RunningSite {
    let tree: [(&str, &[&str]); 5] = [
        ("/", &["/a", "/b"]),
        ("/a", &["/c", "/"]),
        ("/b", &[]),
        ("/c", &["/d", "http://elsewhere.invalid/x"]),
        ("/d", &[]),
    ];
    let mut site = TestSite::new();
    for (path, links) in tree {
        let route = Route::html(page_with("", links)).with_header("etag", &format!("\"{path}\""));
        site = site.route(path, route);
    }
    site.start().await
}

/// Validators for every page of a crawl, links included, as a caller would
/// store them.
fn validators_of(events: &[CrawlEvent]) -> HashMap<String, Validators> {
    pages(events)
        .into_iter()
        .map(|page| {
            let validators = Validators {
                etag: page.etag.clone(),
                last_modified: page.last_modified.clone(),
                links: page.links.iter().map(ToString::to_string).collect(),
            };
            (page.url.to_string(), validators)
        })
        .collect()
}

#[tokio::test]
async fn pages_answering_304_have_their_stored_links_followed() {
    let site = tagged_site().await;
    let (first, _) = crawl(config(&site, "/")).await;
    assert_eq!(page_paths(&first), ["/", "/a", "/b", "/c", "/d"]);
    let c = pages(&first).into_iter().find(|page| page.url.path() == "/c").unwrap();
    assert!(c.links.contains(&site.url("/d")));
    assert!(c.links.iter().all(|link| link.host_str() == Some("127.0.0.1")), "{:?}", c.links);
    assert_eq!(c.links_found, c.links.len() + 1, "the off-site link is found, not kept");

    let mut second = config(&site, "/");
    second.validators = validators_of(&first);
    let (events, stats) = crawl(second).await;

    assert_eq!((stats.pages, stats.not_modified, stats.bytes), (0, 5, 0), "{events:?}");
    let mut depths: Vec<(String, usize)> = events
        .iter()
        .map(|event| match event {
            CrawlEvent::NotModified(page) => (page.url.path().to_owned(), page.depth),
            other => panic!("expected only 304s: {other:?}"),
        })
        .collect();
    depths.sort();
    let expected = [("/", 0), ("/a", 1), ("/b", 1), ("/c", 2), ("/d", 3)];
    assert_eq!(depths, expected.map(|(path, depth)| (path.to_owned(), depth)));
    assert_eq!(site.hits("/d"), 2, "each page asked for once per crawl");
}

#[tokio::test]
async fn replayed_links_obey_scope_depth_and_bad_entries_are_ignored() {
    let site = tagged_site().await;
    let (first, _) = crawl(config(&site, "/")).await;
    let mut validators = validators_of(&first);
    let home = validators.get_mut(site.url("/").as_str()).unwrap();
    home.links.extend(["not a url".to_owned(), "ftp://x.example/".to_owned()]);

    let mut second = config(&site, "/");
    second.validators = validators;
    second.exclude = vec!["/b$".to_owned()];
    second.max_depth = 1;
    let (events, stats) = crawl(second).await;

    let mut seen: Vec<&str> = events.iter().map(|event| event.url().path()).collect();
    seen.sort_unstable();
    assert_eq!(seen, ["/", "/a"], "{events:?}");
    assert_eq!((stats.not_modified, stats.failed_total()), (2, 0));
    assert_eq!(site.hits("/b"), 1, "excluded on the second crawl");
    assert_eq!(site.hits("/c"), 1, "deeper than max_depth on the second crawl");
}

#[tokio::test]
async fn rate_limited_pages_are_retried_a_bounded_number_of_times() {
    let site = TestSite::new()
        .route("/", Route::status(503).with_header("retry-after", "0"))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.max_retries = 2;
    let (events, stats) = crawl(config).await;

    assert!(matches!(&events[..], [CrawlEvent::Failed(f)] if f.status == Some(503)), "{events:?}");
    assert_eq!(site.hits("/"), 3);
    assert_eq!(stats.retries, 2);
}

#[tokio::test]
async fn per_host_concurrency_is_honoured() {
    let site = TestSite::plain(12).start().await;
    for path in (1..=12).map(plain_page_path) {
        site.set_route(
            &path,
            Route::html(page_with("", &[])).with_delay(Duration::from_millis(30)),
        );
    }
    let mut config = config(&site, "/");
    (config.concurrency, config.per_host) = (16, 3);
    let (events, _) = crawl(config).await;
    assert_eq!(pages(&events).len(), 13);
    assert!(site.peak_in_flight() <= 3, "peak {}", site.peak_in_flight());
}

#[tokio::test]
async fn a_slow_consumer_slows_the_crawl() {
    let site = TestSite::large(5_000).start().await;
    let mut config = config(&site, &large_page_path(0));
    (config.concurrency, config.per_host) = (4, 4);
    let crawler = Crawler::new(config).unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });

    // Not reading lets the crawler fill the channel, its pending send and
    // its finished tasks, and then it must wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched_while_blocked = site.total_hits();
    assert!(fetched_while_blocked <= 1 + 1 + 1 + 4, "{fetched_while_blocked} requests");

    drop(receiver.recv().await);
    drop(receiver);
    let stats = run.await.unwrap();
    assert!(stats.consumer_gone);
    assert!(!stats.cancelled);
}

#[tokio::test]
async fn cancellation_stops_the_crawl() {
    let site = TestSite::large(5_000).start().await;
    let crawler = Crawler::new(config(&site, &large_page_path(0))).unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let cancel = cancel.clone();
        async move { crawler.run(sender, cancel).await }
    });

    for _ in 0..3 {
        assert!(receiver.recv().await.is_some());
    }
    cancel.cancel();
    let stats = run.await.unwrap();
    assert!(stats.cancelled);
    assert!(stats.pages < 5_000);
    let after = site.total_hits();
    while receiver.recv().await.is_some() {}
    assert_eq!(site.total_hits(), after, "nothing is requested after the run returns");
}

#[tokio::test]
async fn gzip_encoded_pages_are_decoded() {
    let site = TestSite::new().route("/", Route::html(page_with("", &[])).gzipped()).start().await;
    let (events, stats) = crawl(config(&site, "/")).await;
    let page = pages(&events).into_iter().next().unwrap_or_else(|| panic!("no page: {events:?}"));
    assert!(page.html.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.bytes, page.html.len() as u64, "bytes are counted after content decoding");
    assert_eq!(stats.bytes, page.bytes);
}

#[tokio::test]
async fn a_page_can_change_and_disappear_between_runs() {
    let site = TestSite::plain(2).start().await;
    let (events, _) = crawl(config(&site, "/")).await;
    assert_eq!(pages(&events).len(), 3);

    site.set_page("/page/1", page_with("", &[]).replace("Test", "Changed"));
    site.remove_page("/page/2");
    let (events, _) = crawl(config(&site, "/")).await;
    let changed = pages(&events).into_iter().find(|page| page.url.path() == "/page/1").unwrap();
    assert!(changed.html.contains("Changed"));
    let Some(CrawlEvent::Failed(gone)) = event_for(&events, "/page/2") else {
        panic!("expected /page/2 to fail: {events:?}");
    };
    assert_eq!(gone.status, Some(404));
    assert_eq!(gone.referrer.as_ref(), Some(&site.url("/")), "where the broken link is");

    let (events, _) = crawl(config(&site, "/page/2")).await;
    let Some(CrawlEvent::Failed(start)) = event_for(&events, "/page/2") else {
        panic!("expected the start URL to fail: {events:?}");
    };
    assert_eq!((start.status, start.referrer.as_ref()), (Some(404), None), "no link led there");
}

#[test]
fn bad_configurations_are_rejected_before_running() {
    let with =
        |start: &str| CrawlConfig { start_urls: vec![start.into()], ..CrawlConfig::default() };
    assert!(matches!(Crawler::new(CrawlConfig::default()), Err(CrawlError::NoStartUrls)));
    assert!(matches!(Crawler::new(with("not a url")), Err(CrawlError::InvalidUrl { .. })));
    assert!(matches!(
        Crawler::new(with("ftp://example.com/")),
        Err(CrawlError::UnsupportedUrl { .. })
    ));
    let bad_regex = CrawlConfig { include: vec!["([".into()], ..with("https://example.com/") };
    assert!(matches!(
        Crawler::new(bad_regex),
        Err(CrawlError::InvalidPattern { which: "include", .. })
    ));
    let zero = CrawlConfig { concurrency: 0, ..with("https://example.com/") };
    let error = Crawler::new(zero).unwrap_err();
    assert_eq!(error.to_string(), "invalid setting concurrency: must be at least 1");
    assert!(Crawler::new(with("https://example.com/")).is_ok());
}

#[tokio::test]
async fn skipped_pages_count_against_max_pages() {
    // An endless tree of noindex pages: nothing is ever emitted as a page,
    // yet the budget bounds the requests.
    let site = TestSite::new()
        .generator(|path| {
            let n: u64 = path.strip_prefix("/n/")?.parse().ok()?;
            let links: Vec<String> = (1..=10).map(|i| format!("/n/{}", n * 10 + i)).collect();
            let links: Vec<&str> = links.iter().map(String::as_str).collect();
            Some(Route::html(page_with(r#"<meta name="robots" content="noindex">"#, &links)))
        })
        .start()
        .await;
    let mut config = config(&site, "/n/0");
    (config.max_pages, config.max_depth, config.concurrency, config.per_host) = (5, 3, 8, 8);
    let (events, stats) = crawl(config).await;

    // The pages' header links to `/`, a 404 here: a request like any other.
    assert_eq!((stats.pages, stats.skipped_total() + stats.failed_total()), (0, 5), "{stats:?}");
    assert_eq!(events.len(), 5);
    assert_eq!(site.total_hits() - site.hits("/robots.txt") as u64, 5);
    assert_eq!(stats.pages_requested, 5);
    assert!(stats.page_limit_reached);
}

#[tokio::test]
async fn sitemap_seeding_is_bounded_by_the_page_budget() {
    let site = TestSite::new().page("/", page_with("", &[])).start().await;
    let mut entries: Vec<(String, Option<String>)> =
        (0..100).map(|i| (site.url(&format!("/s/{i}")).to_string(), None)).collect();
    entries.insert(0, ("http://elsewhere.invalid/x".into(), Some("2026-01-01".into())));
    let xml = test_support::site::sitemap_xml(&entries);
    site.set_route("/sitemap.xml", Route::bytes("application/xml", xml));
    let mut config = config(&site, "/");
    (config.sitemaps, config.max_pages) = (true, 5);
    let (_, stats) = crawl(config).await;

    assert_eq!(stats.sitemap_urls, 20, "4 x max_pages in-scope urls, the off-site one not counted");
    assert_eq!(stats.pages_requested, 5);
}

#[tokio::test]
async fn links_kept_per_page_are_capped() {
    let links: Vec<String> =
        (0..site_crawler::links::MAX_LINKS_PER_PAGE + 7).map(|i| format!("/l/{i}")).collect();
    let links: Vec<&str> = links.iter().map(String::as_str).collect();
    let site = TestSite::new().page("/", page_with("", &links)).start().await;
    let mut config = config(&site, "/");
    config.max_depth = 0;
    let (events, stats) = crawl(config).await;

    let home = pages(&events).into_iter().next().unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(home.links_found, site_crawler::links::MAX_LINKS_PER_PAGE);
    assert_eq!(stats.link_lists_truncated, 1);
}

#[tokio::test]
async fn meta_refresh_redirects_are_followed_on_near_empty_pages() {
    let refresh = |delay: u32, to: &str, words: usize| {
        format!(
            r#"<html><head><meta http-equiv="refresh" content="{delay}; url={to}"></head><body><p>{}</p></body></html>"#,
            "word ".repeat(words)
        )
    };
    let site = TestSite::new()
        .page("/", page_with("", &["/old", "/slow", "/wordy", "/loop-a", "/away"]))
        .page("/old", refresh(0, "/new", 5))
        .page("/new", page_with("", &[]))
        .page("/slow", refresh(30, "/new-slow", 5))
        .page("/wordy", refresh(0, "/new-wordy", 300))
        .page("/loop-a", refresh(0, "/loop-b", 1))
        .page("/loop-b", refresh(1, "/loop-a", 1))
        .page("/away", refresh(0, "http://localhost:1/", 1))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.max_depth = 1;
    config.include = vec!["/(old|slow|wordy|loop-a|loop-b|away)?$".into(), "/new$".into()];
    let (events, stats) = crawl(config).await;

    let new = pages(&events).into_iter().find(|page| page.url.path() == "/new");
    let new = new.unwrap_or_else(|| panic!("/new not reached: {events:?}"));
    assert_eq!(new.requested_url.path(), "/old");
    assert_eq!(page_paths(&events), ["/", "/new", "/slow", "/wordy"]);
    assert!(
        matches!(event_for(&events, "/loop-a"), Some(CrawlEvent::Failed(f)) if f.kind == FailKind::RedirectLoop)
    );
    assert!(
        matches!(event_for(&events, "/away"), Some(CrawlEvent::Skipped(s)) if matches!(s.reason, SkipReason::OutOfScope { .. }))
    );
    assert_eq!((site.hits("/new-slow"), site.hits("/new-wordy")), (0, 0));
    assert_eq!(stats.refreshes, 2, "/old, and /loop-a to /loop-b before the loop is seen");
}

#[tokio::test]
async fn no_parent_keeps_the_crawl_under_the_start_folder() {
    let site = TestSite::new()
        .page("/docs/", page_with("", &["/docs/a", "/blog/x", "/", "/docs-old/y"]))
        .page("/docs/a", page_with("", &[]))
        .page("/docs/b", page_with("", &[]))
        .page("/blog/x", page_with("", &[]))
        .page("/blog/y", page_with("", &[]))
        .page("/", page_with("", &[]))
        .page("/docs-old/y", page_with("", &[]))
        .start()
        .await;
    let xml = test_support::site::sitemap_xml(&[
        (site.url("/docs/b").to_string(), None),
        (site.url("/blog/y").to_string(), None),
    ]);
    site.set_route("/sitemap.xml", Route::bytes("application/xml", xml));
    let mut config = config(&site, "/docs/");
    (config.no_parent, config.sitemaps) = (true, true);
    let (events, stats) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/docs/", "/docs/a", "/docs/b"]);
    assert_eq!(stats.sitemap_urls, 1);
    for outside in ["/blog/x", "/blog/y", "/", "/docs-old/y"] {
        assert_eq!(site.hits(outside), 0, "{outside}");
    }
}

#[tokio::test]
async fn failures_name_their_innermost_cause() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let start = format!("http://127.0.0.1:{port}/");
    let config = CrawlConfig {
        start_urls: vec![start],
        sitemaps: false,
        robots_retry: Duration::from_millis(1),
        connect_timeout: Duration::from_secs(2),
        ..CrawlConfig::default()
    };
    let (events, _) = crawl(config.clone()).await;
    let [CrawlEvent::Failed(failed)] = &events[..] else {
        panic!("expected one failure: {events:?}");
    };
    assert_eq!(failed.kind, FailKind::RobotsUnavailable);
    assert!(failed.error.starts_with("robots.txt unreachable: "), "{}", failed.error);
    assert!(failed.error.ends_with(": connection refused"), "{}", failed.error);

    let (events, _) = crawl(CrawlConfig { respect_robots: false, ..config }).await;
    let [CrawlEvent::Failed(failed)] = &events[..] else {
        panic!("expected one failure: {events:?}");
    };
    assert_eq!(failed.kind, FailKind::Connect);
    assert!(failed.error.ends_with(": connection refused"), "{}", failed.error);
}
