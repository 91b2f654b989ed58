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
        assert_eq!(pages(&events).len(), max_pages);
        assert_eq!(stats.pages as usize, max_pages);
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
    let (events, _) = crawl(config_5xx).await;
    assert!(
        matches!(&events[..], [CrawlEvent::Failed(f)] if f.kind == FailKind::RobotsUnavailable && f.error.contains("503")),
        "{events:?}"
    );
    assert_eq!(site.hits("/"), 0);

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
async fn canonical_duplicates_are_emitted_once() {
    let site = TestSite::new()
        .page("/", page_with("", &["/a", "/b", "/c?utm_source=x"]))
        .page("/a", page_with(r#"<link rel="canonical" href="/c">"#, &[]))
        .page("/b", page_with(r#"<link rel="canonical" href="/c">"#, &[]))
        .page("/c", page_with("", &[]))
        .start()
        .await;
    let mut config = config(&site, "/");
    config.concurrency = 1;
    let (events, stats) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/", "/c"]);
    let c = pages(&events).into_iter().find(|page| page.url.path() == "/c").unwrap();
    assert_eq!(c.requested_url.path(), "/a", "the first page claiming /c wins");
    assert!(
        matches!(event_for(&events, "/b"), Some(CrawlEvent::Skipped(s)) if matches!(s.reason, SkipReason::Duplicate { .. }))
    );
    assert_eq!(stats.duplicates_dropped, 1, "/c itself is dropped unfetched");
    assert_eq!(site.hits("/c"), 0);
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
