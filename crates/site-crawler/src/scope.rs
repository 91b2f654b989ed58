//! Which URLs belong to the crawl.
//!
//! A URL is in scope when its host is a start host (or a subdomain of one,
//! when allowed, or an extra host), it passes the include and exclude
//! regexes and, with `no_parent`, its path lies under the folder of a start
//! URL on the same host. The check runs on normalized URLs, for every discovered link,
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
    /// With `no_parent`: `(host, port, folder)` of each start URL.
    folders: Vec<(String, Option<u16>, String)>,
}

impl Scope {
    /// Compiles a scope from the start URLs' hosts, the extra hosts and the
    /// patterns. With `no_parent`, URLs on a start URL's host must lie
    /// under the folder of one of that host's start URLs.
    ///
    /// # Errors
    ///
    /// [`CrawlError::InvalidPattern`] for a bad regex and
    /// [`CrawlError::InvalidHost`] for an extra host that is not a host.
    pub fn new(
        start_urls: &[Url],
        extra_hosts: &[String],
        allow_subdomains: bool,
        no_parent: bool,
        include: &[String],
        exclude: &[String],
    ) -> Result<Self, CrawlError> {
        let mut hosts: HashSet<String> =
            start_urls.iter().filter_map(|url| url.host_str().map(str::to_owned)).collect();
        for host in extra_hosts {
            hosts.insert(parse_host(host)?);
        }

        let folders = if no_parent {
            start_urls
                .iter()
                .filter_map(|url| {
                    let path = url.path();
                    let folder = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
                    Some((url.host_str()?.to_owned(), url.port(), folder.to_owned()))
                })
                .collect()
        } else {
            Vec::new()
        };

        Ok(Self {
            hosts,
            allow_subdomains,
            include: compile("include", include)?,
            exclude: compile("exclude", exclude)?,
            folders,
        })
    }

    /// Whether the URL lies under a start folder of its host, or its host
    /// has none (always, without `no_parent`).
    #[must_use]
    pub fn folder_allows(&self, url: &Url) -> bool {
        let (host, port) = (url.host_str().unwrap_or_default(), url.port());
        let mut on_start_host = false;
        for (start_host, start_port, folder) in &self.folders {
            if start_host == host && *start_port == port {
                if url.path().starts_with(folder.as_str()) {
                    return true;
                }
                on_start_host = true;
            }
        }
        !on_start_host
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

    /// Whether the URL is in scope: host, patterns and start folders.
    #[must_use]
    pub fn contains(&self, url: &Url) -> bool {
        self.host_allowed(url) && self.patterns_allow(url) && self.folder_allows(url)
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
            false,
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
    fn no_parent_keeps_to_the_start_folders_of_each_start_host() {
        let starts = [
            url("https://example.com/book/index.html"),
            url("https://example.com/guide/"),
            url("http://other.example:8080/a/b"),
        ];
        let scope =
            Scope::new(&starts, &["cdn.example.net".into()], false, true, &[], &[]).unwrap();
        for inside in [
            "https://example.com/book/",
            "https://example.com/book/ch01.html",
            "http://example.com/guide/x/y",
            "http://other.example:8080/a/c",
            "https://cdn.example.net/anything",
        ] {
            assert!(scope.contains(&url(inside)), "{inside}");
        }
        for outside in [
            "https://example.com/",
            "https://example.com/bookkeeping",
            "https://example.com/about/book/",
            "http://other.example:8080/b",
        ] {
            assert!(!scope.contains(&url(outside)), "{outside}");
        }
        let whole = Scope::new(&[url("https://example.com/book")], &[], false, true, &[], &[]);
        assert!(whole.unwrap().contains(&url("https://example.com/other")), "/book gives /");
    }

    #[test]
    fn bad_pattern_and_host_are_reported() {
        let err = Scope::new(&[], &[], false, false, &["(".to_owned()], &[]).unwrap_err();
        assert!(matches!(err, CrawlError::InvalidPattern { which: "include", .. }));
        let err = Scope::new(&[], &[" ".to_owned()], false, false, &[], &[]).unwrap_err();
        assert!(matches!(err, CrawlError::InvalidHost { .. }));
    }
}
