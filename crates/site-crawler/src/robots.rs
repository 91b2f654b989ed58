//! robots.txt rules for one host, per RFC 9309.
//!
//! A thin wrapper over `robotxt`, which does the parsing and matching
//! (group selection by product token, longest-match Allow/Disallow with `*`
//! and `$`, 500 KiB cap). The wrapper exists so the rest of the crate
//! depends on a handful of methods we test ourselves rather than on a young
//! crate's API, and to hold our decisions in one place: how an HTTP status
//! maps to access (RFC 9309 section 2.3.1) and which name we match groups by.

use std::time::Duration;

use robotxt::{AccessResult, Robots};
use url::Url;

/// Largest robots.txt read; RFC 9309 requires parsing at least 500 KiB.
pub const MAX_ROBOTS_BYTES: usize = robotxt::BYTE_LIMIT;

/// The robots.txt rules that apply to us on one host.
#[derive(Debug, Clone)]
pub struct RobotsRules {
    robots: Robots,
    /// Why robots.txt could not be read, when it could not.
    unavailable: Option<String>,
}

impl RobotsRules {
    /// Parses a robots.txt body and keeps the group for `user_agent`'s
    /// product token (see [`product_token`]), else the `*` group.
    #[must_use]
    pub fn parse(body: &[u8], user_agent: &str) -> Self {
        let robots = Robots::from_access(AccessResult::Successful(body), product_token(user_agent));
        Self { robots, unavailable: None }
    }

    /// Rules for a robots.txt request that got `status` instead of a body:
    /// 4xx (and redirects that never ended) allow everything, 5xx
    /// disallow everything (RFC 9309 section 2.3.1.3 and 2.3.1.4).
    #[must_use]
    pub fn for_status(status: u16) -> Self {
        if (400..500).contains(&status) {
            Self::allow_all()
        } else {
            Self::unreachable(format!("robots.txt answered {status}"))
        }
    }

    /// Rules allowing everything, used when robots.txt is ignored or absent.
    #[must_use]
    pub fn allow_all() -> Self {
        Self { robots: Robots::allow_all(), unavailable: None }
    }

    /// Rules for a robots.txt that could not be fetched (5xx, network
    /// error): nothing may be crawled. `cause` says what went wrong.
    #[must_use]
    pub fn unreachable(cause: String) -> Self {
        let robots = Robots::from_access(AccessResult::Unreachable, "*");
        Self { robots, unavailable: Some(cause) }
    }

    /// Whether the rules came from a failed fetch rather than a file.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        self.unavailable.is_some()
    }

    /// Why robots.txt could not be read, when it could not.
    #[must_use]
    pub fn unavailable_cause(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// Whether we may fetch the URL (its path and query are matched).
    #[must_use]
    pub fn is_allowed(&self, url: &Url) -> bool {
        self.robots.is_url_allowed(url)
    }

    /// The `Crawl-delay` of our group, if any.
    #[must_use]
    pub fn crawl_delay(&self) -> Option<Duration> {
        self.robots.crawl_delay()
    }

    /// The `Sitemap:` URLs listed in the file (all groups).
    #[must_use]
    pub fn sitemaps(&self) -> &[Url] {
        self.robots.sitemaps()
    }
}

/// The product token robots.txt groups are matched against: the
/// `User-Agent` up to the first `/` or space, e.g. `dify-crawl` for
/// `dify-crawl/0.1.0 (+https://example.com)`.
#[must_use]
pub fn product_token(user_agent: &str) -> &str {
    let token = user_agent.trim().split(['/', ' ']).next().unwrap_or_default();
    if token.is_empty() { "*" } else { token }
}

/// The robots.txt URL for the URL's origin.
#[must_use]
pub fn robots_url(url: &Url) -> Option<Url> {
    robotxt::robots_url(url).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA: &str = "dify-crawl/0.1.0";

    fn allowed(rules: &RobotsRules, path: &str) -> bool {
        rules.is_allowed(&Url::parse(&format!("https://example.com{path}")).unwrap())
    }

    #[test]
    fn longest_match_wins_and_allow_wins_ties() {
        let rules = RobotsRules::parse(
            b"User-agent: *\nDisallow: /docs/\nAllow: /docs/public/\nDisallow: /docs/public/secret\nAllow: /tie\nDisallow: /tie\n",
            UA,
        );
        assert!(!allowed(&rules, "/docs/a"));
        assert!(allowed(&rules, "/docs/public/a"));
        assert!(!allowed(&rules, "/docs/public/secret.html"));
        assert!(allowed(&rules, "/tie"));
        assert!(allowed(&rules, "/other"));
    }

    #[test]
    fn wildcards_and_end_anchor() {
        let rules =
            RobotsRules::parse(b"User-agent: *\nDisallow: /*.pdf$\nDisallow: /*/print\n", UA);
        assert!(!allowed(&rules, "/files/a.pdf"));
        assert!(allowed(&rules, "/files/a.pdf?x=1"));
        assert!(allowed(&rules, "/files/a.pdfx"));
        assert!(!allowed(&rules, "/a/print/b"));
    }

    #[test]
    fn our_group_is_selected_by_product_token() {
        let txt = b"User-agent: *\nDisallow: /\n\nUser-agent: Dify-Crawl\nDisallow: /private\nCrawl-delay: 3\n";
        let rules = RobotsRules::parse(txt, "dify-crawl/0.1.0 (+https://example.com/bot)");
        assert!(allowed(&rules, "/public"));
        assert!(!allowed(&rules, "/private"));
        assert_eq!(rules.crawl_delay(), Some(Duration::from_secs(3)));
        let other = RobotsRules::parse(txt, "otherbot/1.0");
        assert!(!allowed(&other, "/public"));
    }

    #[test]
    fn status_codes_map_to_access() {
        assert!(allowed(&RobotsRules::for_status(404), "/x"));
        assert!(allowed(&RobotsRules::for_status(403), "/x"));
        let unreachable = RobotsRules::for_status(503);
        assert!(!allowed(&unreachable, "/x"));
        assert!(unreachable.is_unavailable());
    }

    #[test]
    fn sitemaps_are_listed_and_robots_txt_itself_is_allowed() {
        let rules = RobotsRules::parse(
            b"Sitemap: https://example.com/s.xml\nUser-agent: *\nDisallow: /\n",
            UA,
        );
        assert_eq!(rules.sitemaps().len(), 1);
        assert!(allowed(&rules, "/robots.txt"));
        assert!(!allowed(&rules, "/index.html"));
    }

    #[test]
    fn malformed_file_is_tolerated() {
        let rules = RobotsRules::parse(
            b"\xff\xfe garbage\nDisallow /nocolon\nUser-agent: *\nDisallow: /x\n<html>",
            UA,
        );
        assert!(!allowed(&rules, "/x"));
        assert!(allowed(&rules, "/y"));
    }

    #[test]
    fn product_token_extraction() {
        assert_eq!(product_token("dify-crawl/0.1.0 (+x)"), "dify-crawl");
        assert_eq!(product_token("  "), "*");
    }
}
