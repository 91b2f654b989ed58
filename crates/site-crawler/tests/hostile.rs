//! The crawler against the hostile test site: each case on its own.

mod support;

use std::time::Duration;

use site_crawler::{CrawlEvent, FailKind, SkipReason};
use support::{config, crawl, event_for, page_paths, pages};
use test_support::site::{TestSite, hostile};

fn single(config: &mut site_crawler::CrawlConfig) {
    config.max_depth = 0;
}

#[tokio::test]
async fn redirect_loop_fails_as_a_loop() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::REDIRECT_LOOP);
    single(&mut config);
    let (events, stats) = crawl(config).await;

    let Some(CrawlEvent::Failed(failed)) = event_for(&events, hostile::REDIRECT_LOOP) else {
        panic!("expected a failure, got {events:?}");
    };
    assert_eq!(failed.kind, FailKind::RedirectLoop);
    assert_eq!(stats.redirects, 1);
    assert_eq!(site.hits("/loop/a"), 1);
    assert_eq!(site.hits("/loop/b"), 1);
}

#[tokio::test]
async fn endless_redirects_stop_at_the_hop_limit() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::ENDLESS_REDIRECTS);
    single(&mut config);
    config.max_redirects = 4;
    let (events, _) = crawl(config).await;

    let Some(CrawlEvent::Failed(failed)) = event_for(&events, hostile::ENDLESS_REDIRECTS) else {
        panic!("expected a failure, got {events:?}");
    };
    assert_eq!(failed.kind, FailKind::TooManyRedirects);
    let hops: usize = (0..10).map(|step| site.hits(&format!("/chain/{step}"))).sum();
    assert_eq!(hops, 5, "the start plus four followed hops");
}

#[tokio::test]
async fn redirect_out_of_scope_is_skipped_not_followed() {
    let site = TestSite::hostile().start().await;
    let (events, _) = crawl(config(&site, hostile::REDIRECT_OUT_OF_SCOPE)).await;

    let Some(CrawlEvent::Skipped(skipped)) = event_for(&events, hostile::REDIRECT_OUT_OF_SCOPE)
    else {
        panic!("expected a skip, got {events:?}");
    };
    let SkipReason::OutOfScope { target } = &skipped.reason else {
        panic!("wrong reason {:?}", skipped.reason);
    };
    assert_eq!(target.host_str(), Some("localhost"));
}

#[tokio::test]
async fn endless_calendar_is_bounded_by_depth() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::CALENDAR);
    config.max_depth = 5;
    config.include = vec!["/cal/".into()];
    let (events, stats) = crawl(config).await;

    // Depth 0..=5 forward, and as many months backward.
    assert_eq!(stats.pages, 11, "{:?}", page_paths(&events));
    assert!(pages(&events).iter().all(|page| page.depth <= 5));
    assert_eq!(site.hits("/cal/2027/6"), 0, "six months ahead is depth 6");
}

#[tokio::test]
async fn endless_calendar_is_bounded_by_max_pages() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::CALENDAR);
    config.max_depth = usize::MAX;
    config.max_pages = 25;
    // Every month links home, and home to the slow and broken cases; they
    // would count against the budget too, so keep to the calendar.
    config.include = vec!["/cal/".into()];
    let (_, stats) = crawl(config).await;
    assert_eq!(stats.pages, 25);
    assert_eq!(stats.pages_requested, 25);
    assert!(stats.page_limit_reached);
}

#[tokio::test]
async fn huge_pages_are_skipped_with_and_without_content_length() {
    let site = TestSite::hostile().start().await;
    for path in [hostile::HUGE, hostile::HUGE_CHUNKED] {
        let mut config = config(&site, path);
        config.max_body_bytes = 1024 * 1024;
        let (events, stats) = crawl(config).await;

        let Some(CrawlEvent::Skipped(skipped)) = event_for(&events, path) else {
            panic!("expected a skip for {path}, got {events:?}");
        };
        assert_eq!(skipped.reason, SkipReason::TooLarge { limit: 1024 * 1024 });
        assert_eq!(stats.bytes, 0, "nothing of a refused body is counted as read");
        // What the server wrote: at most the limit plus what the socket
        // buffers of both ends and one chunk hold, far below the page.
        let sent = site.bytes_sent(path);
        eprintln!("{path}: {sent} bytes sent");
        assert!(sent <= 1024 * 1024 + SOCKET_SLACK, "{path}: {sent} bytes sent");
    }
}

/// What loopback socket buffers (send and receive, autotuned) and one
/// response chunk can hold beyond what the client read.
const SOCKET_SLACK: u64 = 12 * 1024 * 1024;

#[tokio::test]
async fn binary_served_as_html_and_pdf_are_skipped() {
    let site = TestSite::hostile().start().await;
    let (events, _) = crawl(config(&site, hostile::BINARY)).await;
    assert!(
        matches!(event_for(&events, hostile::BINARY), Some(CrawlEvent::Skipped(s)) if s.reason == SkipReason::Binary)
    );

    let (events, _) = crawl(config(&site, hostile::PDF)).await;
    let Some(CrawlEvent::Skipped(skipped)) = event_for(&events, hostile::PDF) else {
        panic!("expected a skip, got {events:?}");
    };
    assert!(
        matches!(&skipped.reason, SkipReason::NotHtml { content_type: Some(t) } if t == "application/pdf")
    );
}

#[tokio::test]
async fn legacy_charsets_are_decoded_to_utf8() {
    let site = TestSite::hostile().start().await;
    for (path, text) in [
        (hostile::WINDOWS_1252, hostile::WINDOWS_1252_TEXT),
        (hostile::SHIFT_JIS, hostile::SHIFT_JIS_TEXT),
    ] {
        let (events, _) = crawl(config(&site, path)).await;
        let page = pages(&events)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no page for {path}: {events:?}"));
        assert!(page.html.contains(text), "{path}: {}", page.html);
    }
}

#[tokio::test]
async fn invalid_utf8_is_replaced_not_rejected() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::INVALID_UTF8);
    single(&mut config);
    let (events, _) = crawl(config).await;
    let page = pages(&events).into_iter().next().unwrap_or_else(|| panic!("no page: {events:?}"));
    assert!(page.html.contains(hostile::INVALID_UTF8_TEXT));
    assert!(page.html.contains('\u{FFFD}'));
}

#[tokio::test]
async fn a_stalled_server_times_out() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::STALL);
    config.timeout = Duration::from_millis(500);
    let (events, _) = crawl(config).await;
    let Some(CrawlEvent::Failed(failed)) = event_for(&events, hostile::STALL) else {
        panic!("expected a failure, got {events:?}");
    };
    assert_eq!(failed.kind, FailKind::Timeout, "{}", failed.error);
    assert!(failed.error.ends_with(": timed out after 500ms"), "{}", failed.error);
}

#[tokio::test]
async fn pathological_nesting_is_scanned_for_links() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::DEEP_NESTING);
    config.max_depth = 1;
    config.include = vec!["/deep-nesting$".into(), "/page/".into()];
    let (events, _) = crawl(config).await;

    let deep = pages(&events).into_iter().find(|page| page.url.path() == hostile::DEEP_NESTING);
    let deep = deep.unwrap_or_else(|| panic!("no page: {events:?}"));
    assert_eq!(deep.links_found, 1);
    assert_eq!(page_paths(&events), [hostile::DEEP_NESTING, hostile::DEEP_NESTING_TARGET]);
}

#[tokio::test]
async fn unfetchable_link_schemes_are_ignored() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::JUNK_LINKS);
    config.max_depth = 1;
    config.include = vec!["/junk-links$".into(), "/page/".into()];
    let (events, _) = crawl(config).await;

    assert_eq!(page_paths(&events), [hostile::JUNK_LINKS, hostile::JUNK_LINKS_TARGET]);
    let start =
        pages(&events).into_iter().find(|page| page.url.path() == hostile::JUNK_LINKS).unwrap();
    assert_eq!(start.links_found, 2, "home and the real link only");
}

#[tokio::test]
async fn base_href_is_honoured() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, hostile::BASE_HREF);
    config.include = vec!["/base/|/elsewhere/".into()];
    let (events, _) = crawl(config).await;
    assert_eq!(page_paths(&events), [hostile::BASE_HREF, hostile::BASE_HREF_TARGET]);
}

#[tokio::test]
async fn the_whole_hostile_site_completes() {
    let site = TestSite::hostile().start().await;
    let mut config = config(&site, "/");
    // Long enough for any page on a loaded machine, short enough that the
    // stalled page fails in reasonable time.
    config.timeout = Duration::from_secs(5);
    config.max_body_bytes = 1024 * 1024;
    config.max_depth = 3;
    let (events, stats) = crawl(config).await;

    let scheduled = stats.pages + stats.skipped_total() + stats.failed_total();
    assert_eq!(scheduled as usize, events.len());
    assert!(stats.pages >= 8, "{stats:?}");
    assert!(
        stats.failed.contains_key("timeout") && stats.failed.contains_key("redirect_loop"),
        "{stats:?}"
    );
}
