//! Which URLs belong to the crawl.
//!
//! A URL is in scope when its host is a start host (or a subdomain of one,
//! when allowed, or an extra host) and it passes the include and exclude
//! regexes. The check runs on normalized URLs, for every discovered link,
//! every redirect hop and every canonical URL, so it is kept allocation
//! free: hosts in a set, patterns compiled once into `RegexSet`s.

use std::collections::HashSet;

use regex::RegexSet;
use url::Url;

use crate::error::CrawlError;

/// The compiled scope of a crawl.
#[derive(Debug, Clone)]
pub struct Scope {
    hosts: HashSet<String>,
    allow_subdomains: bool,
    include: Option<RegexSet>,
    exclude: Option<RegexSet>,
}

impl Scope {
    /// Compiles a scope from the start URLs' hosts, the extra hosts and the
    /// patterns.
    ///
    /// # Errors
    ///
    /// [`CrawlError::InvalidPattern`] for a bad regex and
    /// [`CrawlError::InvalidHost`] for an extra host that is not a host.
    pub fn new(
        start_urls: &[Url],
        extra_hosts: &[String],
        allow_subdomains: bool,
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, CrawlError> {
        let mut hosts: HashSet<String> =
            start_urls.iter().filter_map(|url| url.host_str().map(str::to_owned)).collect();
        for host in extra_hosts {
            hosts.insert(parse_host(host)?);
        }

        Ok(Self {
            hosts,
            allow_subdomains,
            include: compile("include", include)?,
            exclude: compile("exclude", exclude)?,
        })
    }

    /// Whether the URL's host is in scope.
    #[must_use]
    pub fn host_allowed(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        self.hosts.contains(host)
            || (self.allow_subdomains
                && self.hosts.iter().any(|parent| {
                    host.strip_suffix(parent.as_str()).is_some_and(|prefix| prefix.ends_with('.'))
                }))
    }

    /// Whether the URL passes the include and exclude patterns.
    #[must_use]
    pub fn patterns_allow(&self, url: &Url) -> bool {
        let text = url.as_str();
        self.include.as_ref().is_none_or(|set| set.is_match(text))
            && !self.exclude.as_ref().is_some_and(|set| set.is_match(text))
    }

    /// Whether the URL is in scope: host and patterns.
    #[must_use]
    pub fn contains(&self, url: &Url) -> bool {
        self.host_allowed(url) && self.patterns_allow(url)
    }
}

/// Accepts `docs.example.com`, `Docs.Example.com:8080` or a full URL and
/// returns the lowercased host the `url` crate would produce.
fn parse_host(input: &str) -> Result<String, CrawlError> {
    let invalid = || CrawlError::InvalidHost { host: input.to_owned() };
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid());
    }

    let candidate =
        if trimmed.contains("://") { trimmed.to_owned() } else { format!("http://{trimmed}/") };
    let url = Url::parse(&candidate).map_err(|_| invalid())?;
    url.host_str().filter(|host| !host.is_empty()).map(str::to_owned).ok_or_else(invalid)
}

fn compile(which: &'static str, patterns: &[String]) -> Result<Option<RegexSet>, CrawlError> {
    if patterns.is_empty() {
        return Ok(None);
    }

    for pattern in patterns {
        if let Err(source) = regex::Regex::new(pattern) {
            return Err(CrawlError::InvalidPattern { which, pattern: pattern.clone(), source });
        }
    }
    RegexSet::new(patterns).map(Some).map_err(|source| CrawlError::InvalidPattern {
        which,
        pattern: patterns.join(" | "),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn scope(subdomains: bool, include: &[&str], exclude: &[&str]) -> Scope {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Scope::new(
            &[url("https://example.com/docs/")],
            &owned(&["Extra.Example.org:8080"]),
            subdomains,
            &owned(include),
            &owned(exclude),
        )
        .unwrap()
    }

    #[test]
    fn start_and_extra_hosts_are_in_scope() {
        let scope = scope(false, &[], &[]);
        assert!(scope.contains(&url("https://example.com/other")));
        assert!(scope.contains(&url("http://extra.example.org/x")));
        assert!(!scope.contains(&url("https://evil.com/")));
        assert!(!scope.contains(&url("https://docs.example.com/")));
    }

    #[test]
    fn subdomains_need_a_dot_boundary() {
        let scope = scope(true, &[], &[]);
        assert!(scope.contains(&url("https://docs.example.com/")));
        assert!(scope.contains(&url("https://a.b.example.com/")));
        assert!(!scope.contains(&url("https://notexample.com/")));
    }

    #[test]
    fn include_and_exclude_patterns() {
        let scope = scope(false, &["/docs/", "/blog/"], &[r"\.pdf$", "/docs/old/"]);
        assert!(scope.contains(&url("https://example.com/docs/a")));
        assert!(scope.contains(&url("https://example.com/blog/b")));
        assert!(!scope.contains(&url("https://example.com/about")));
        assert!(!scope.contains(&url("https://example.com/docs/x.pdf")));
        assert!(!scope.contains(&url("https://example.com/docs/old/y")));
    }

    #[test]
    fn bad_pattern_and_host_are_reported() {
        let err = Scope::new(&[], &[], false, &["(".to_owned()], &[]).unwrap_err();
        assert!(matches!(err, CrawlError::InvalidPattern { which: "include", .. }));
        let err = Scope::new(&[], &[" ".to_owned()], false, &[], &[]).unwrap_err();
        assert!(matches!(err, CrawlError::InvalidHost { .. }));
    }
}
