//! Seeding the crawl from sitemaps.
//!
//! For each start origin: the `Sitemap:` lines of its robots.txt plus
//! `/sitemap.xml`, then nested sitemaps of any index, breadth-first, up to
//! `max_sitemaps` files. Only sitemaps on in-scope hosts are fetched, so
//! the crawl never sends traffic outside its scope, and only in-scope page
//! URLs are kept, at most `limit` of them: a sitemap index can list
//! millions, and holding them all before the first page is fetched would
//! cost memory the page budget never uses. This runs before the page crawl
//! starts, which delays the first page a little but lets every page know
//! its sitemap `lastmod` from the start.

use std::collections::{HashSet, VecDeque};

use tracing::{debug, info};
use url::Url;

use crate::crawler::Shared;
use crate::fetch;
use crate::sitemap::{self, SitemapContent};
use crate::stats::Traffic;
use crate::url_norm;

/// Largest sitemap body read, compressed or not; the sitemap protocol caps
/// files at 50 MiB uncompressed.
const MAX_SITEMAP_BYTES: u64 = sitemapo::BYTE_LIMIT as u64;

/// Up to `limit` distinct in-scope page URLs listed by the start hosts'
/// sitemaps, with their lastmod, in sitemap order.
pub(crate) async fn from_sitemaps(
    shared: &Shared,
    traffic: &Traffic,
    limit: usize,
) -> Vec<(Url, Option<String>)> {
    let mut queue = initial_sitemaps(shared, traffic).await;
    let mut queued: HashSet<Url> = queue.iter().cloned().collect();
    let mut pages = Vec::new();
    let mut kept: HashSet<Url> = HashSet::new();
    let mut fetched = 0;

    while let Some(url) = queue.pop_front() {
        if kept.len() >= limit {
            info!(limit, "sitemap url limit reached; remaining sitemaps ignored");
            break;
        }
        if fetched >= shared.config.max_sitemaps {
            info!(
                limit = shared.config.max_sitemaps,
                "sitemap limit reached; remaining sitemaps ignored"
            );
            break;
        }
        fetched += 1;
        let Some(content) = fetch_sitemap(shared, traffic, &url).await else {
            continue;
        };
        if let Some(error) = &content.error {
            debug!(%url, %error, "sitemap only partly read");
        }
        for nested in content.sitemaps.iter().filter_map(url_norm::normalize) {
            if shared.scope.host_allowed(&nested) && queued.insert(nested.clone()) {
                queue.push_back(nested);
            }
        }
        debug!(%url, pages = content.pages.len(), nested = content.sitemaps.len(), "sitemap read");
        for (page, lastmod) in content.pages {
            if kept.len() >= limit {
                break;
            }
            let Some(page) = url_norm::normalize(&page) else {
                continue;
            };
            if shared.scope.contains(&page) && kept.insert(page.clone()) {
                pages.push((page, lastmod));
            }
        }
    }
    pages
}

/// Sitemaps named by robots.txt, then `/sitemap.xml`, for each start
/// origin.
async fn initial_sitemaps(shared: &Shared, traffic: &Traffic) -> VecDeque<Url> {
    let mut origins = HashSet::new();
    let mut queue = VecDeque::new();
    for start in &shared.starts {
        if !origins.insert(start.origin()) {
            continue;
        }
        let rules = shared.fetcher.robots(start, traffic, &mut None).await.rules;
        let listed = rules.sitemaps().iter().filter_map(url_norm::normalize);
        let default = start.join("/sitemap.xml").ok();
        for url in listed.chain(default) {
            if shared.scope.host_allowed(&url) && !queue.contains(&url) {
                queue.push_back(url);
            }
        }
    }
    queue
}

/// Fetches and parses one sitemap, following in-scope redirects.
async fn fetch_sitemap(shared: &Shared, traffic: &Traffic, url: &Url) -> Option<SitemapContent> {
    let mut target = url.clone();
    for _ in 0..=shared.config.max_redirects {
        if shared.robots_block(&target, traffic, &mut None).await.is_some() {
            debug!(url = %target, "sitemap blocked by robots.txt");
            return None;
        }
        Traffic::bump(&traffic.sitemap_fetches, 1);
        let (response, _permit) =
            shared.fetcher.get(&target, None, traffic, &mut None).await.ok()?;
        let status = response.status();
        if status.is_redirection() {
            target = fetch::redirect_target(&target, response.headers())
                .filter(|next| shared.scope.host_allowed(next))?;
            continue;
        }
        if !status.is_success() {
            debug!(url = %target, %status, "no sitemap");
            return None;
        }
        let body = fetch::read_body(response, MAX_SITEMAP_BYTES, false).await.ok()?;
        return tokio::task::spawn_blocking(move || sitemap::parse(&body)).await.ok();
    }
    None
}
