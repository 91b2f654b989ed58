//! Chooses the knowledge base each page goes to.
//!
//! Three modes, decided once before the crawl starts:
//!
//! - **single**: `--kb NAME` sends every page to one knowledge base;
//! - **rules**: `[[route]]` rules from the config file, tried in order, the
//!   first match wins. A rule names its knowledge base and one or more
//!   conditions that must all hold: `host` (exact, or `*.example.com` for the
//!   domain and its subdomains), `path_prefix` (`/docs` matches `/docs` and
//!   `/docs/...`, not `/docsearch`), `glob` (on the URL path, `*` stays within
//!   one segment, `**` crosses segments) and `regex` (on the whole URL);
//! - **per host** (the fallback when no rule matches): one knowledge base per
//!   host, named after the host.
//!
//! Rules are validated up front ([`Router::from_rules`]) so a typo in a regex
//! fails the run before anything is fetched, with the rule's position in the
//! message. Dify dataset names are 1 to 40 characters; [`knowledge_base_name`]
//! keeps derived names inside that limit without letting two long hosts
//! collapse into one name.

use std::collections::HashMap;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde::Deserialize;
use url::Url;

/// The longest dataset name Dify accepts, in characters.
pub const MAX_KNOWLEDGE_BASE_NAME_CHARS: usize = 40;

/// Characters of the short hash appended to names that had to be cut.
const NAME_HASH_CHARS: usize = 8;

/// One `[[route]]` rule as written in the config file.
///
/// Every condition that is set must hold; at least one must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// The knowledge base matching pages go to (1 to 40 characters).
    pub knowledge_base: String,
    /// The page host, exact (`docs.example.com`) or with a leading `*.`
    /// (`*.example.com`: the domain itself and every subdomain).
    pub host: Option<String>,
    /// A URL path prefix that ends at a segment boundary (`/docs`).
    pub path_prefix: Option<String>,
    /// A glob on the URL path (`/blog/**`, `/api/*/reference`).
    pub glob: Option<String>,
    /// A regular expression searched in the whole URL.
    pub regex: Option<String>,
}

/// A rule that cannot be used, found before the run starts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The `--kb` name is empty or longer than Dify accepts.
    #[error("knowledge base name {name:?} must be 1 to 40 characters")]
    BadSingleName {
        /// The offending name.
        name: String,
    },
    /// A rule's knowledge base name is empty or longer than Dify accepts.
    #[error("route rule {index}: knowledge base name {name:?} must be 1 to 40 characters")]
    BadName {
        /// The rule's position, counted from 1.
        index: usize,
        /// The offending name.
        name: String,
    },
    /// The rule sets no condition, so it would swallow every page.
    #[error(
        "route rule {index} ({knowledge_base:?}) sets no condition: give host, path_prefix, glob or regex"
    )]
    NoCondition {
        /// The rule's position, counted from 1.
        index: usize,
        /// The rule's knowledge base.
        knowledge_base: String,
    },
    /// The host condition is empty or has a misplaced wildcard.
    #[error("route rule {index}: host {host:?} must be a host name, optionally starting with `*.`")]
    BadHost {
        /// The rule's position, counted from 1.
        index: usize,
        /// The offending host.
        host: String,
    },
    /// The path prefix does not start with `/`.
    #[error("route rule {index}: path_prefix {prefix:?} must start with `/`")]
    BadPathPrefix {
        /// The rule's position, counted from 1.
        index: usize,
        /// The offending prefix.
        prefix: String,
    },
    /// The glob does not parse.
    #[error("route rule {index}: invalid glob {glob:?}")]
    BadGlob {
        /// The rule's position, counted from 1.
        index: usize,
        /// The offending glob.
        glob: String,
        /// Why globset refused it.
        #[source]
        source: globset::Error,
    },
    /// The regular expression does not compile.
    #[error("route rule {index}: invalid regex {regex:?}")]
    BadRegex {
        /// The rule's position, counted from 1.
        index: usize,
        /// The offending expression.
        regex: String,
        /// Why the regex crate refused it.
        #[source]
        source: Box<regex::Error>,
    },
}

/// Maps page URLs to knowledge base names.
#[derive(Debug, Clone)]
pub struct Router {
    mode: Mode,
    /// Exact URL -> knowledge base, consulted before the mode (used by
    /// `retry`, which must send a page where it went before).
    pinned: HashMap<String, String>,
}

#[derive(Debug, Clone)]
enum Mode {
    Single(String),
    Rules(Vec<CompiledRule>),
}

#[derive(Debug, Clone)]
struct CompiledRule {
    knowledge_base: String,
    host: Option<HostPattern>,
    path_prefix: Option<String>,
    glob: Option<GlobMatcher>,
    regex: Option<Regex>,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// The domain (without the `*.`) and its subdomains.
    Domain(String),
}

impl Router {
    /// Sends every page to `knowledge_base`.
    ///
    /// # Errors
    ///
    /// [`RouteError::BadSingleName`] when the name is empty or over 40
    /// characters.
    pub fn single(knowledge_base: &str) -> Result<Router, RouteError> {
        let name = checked_name(knowledge_base)
            .ok_or_else(|| RouteError::BadSingleName { name: knowledge_base.to_owned() })?;
        Ok(Router { mode: Mode::Single(name), pinned: HashMap::new() })
    }

    /// Routes by `rules` (first match wins), falling back to one knowledge
    /// base per host. An empty list routes every page per host.
    ///
    /// # Errors
    ///
    /// The first invalid rule, numbered from 1 in config order.
    pub fn from_rules(rules: &[RouteRule]) -> Result<Router, RouteError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| compile(i + 1, rule))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Router { mode: Mode::Rules(compiled), pinned: HashMap::new() })
    }

    /// Sends each URL in `pinned` (exact URL string -> knowledge base) to its
    /// knowledge base whatever the rules say. Default: nothing pinned.
    #[must_use]
    pub fn pinned(mut self, pinned: HashMap<String, String>) -> Router {
        self.pinned = pinned;
        self
    }

    /// The knowledge base for `url`.
    pub fn route(&self, url: &Url) -> String {
        if let Some(name) = self.pinned.get(url.as_str()) {
            return name.clone();
        }
        match &self.mode {
            Mode::Single(name) => name.clone(),
            Mode::Rules(rules) => rules
                .iter()
                .find(|rule| rule.matches(url))
                .map(|rule| rule.knowledge_base.clone())
                .unwrap_or_else(|| host_knowledge_base(url)),
        }
    }

    /// The knowledge bases this router names explicitly (`--kb` or rules),
    /// in order and without repeats. Per-host fallbacks are not included:
    /// route the start URLs to learn those.
    pub fn named_knowledge_bases(&self) -> Vec<String> {
        let names: Vec<&String> = match &self.mode {
            Mode::Single(name) => vec![name],
            Mode::Rules(rules) => rules.iter().map(|r| &r.knowledge_base).collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for name in names {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }
}

impl CompiledRule {
    fn matches(&self, url: &Url) -> bool {
        let host_ok = self.host.as_ref().is_none_or(|h| h.matches(url.host_str().unwrap_or("")));
        let prefix_ok = self.path_prefix.as_ref().is_none_or(|p| path_has_prefix(url.path(), p));
        let glob_ok = self.glob.as_ref().is_none_or(|g| g.is_match(url.path()));
        let regex_ok = self.regex.as_ref().is_none_or(|r| r.is_match(url.as_str()));
        host_ok && prefix_ok && glob_ok && regex_ok
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            HostPattern::Exact(want) => host == *want,
            HostPattern::Domain(domain) => {
                host == *domain
                    || host.strip_suffix(domain.as_str()).is_some_and(|rest| rest.ends_with('.'))
            }
        }
    }
}

/// True when `prefix` covers `path` up to a segment boundary.
fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn compile(index: usize, rule: &RouteRule) -> Result<CompiledRule, RouteError> {
    let knowledge_base = checked_name(&rule.knowledge_base)
        .ok_or_else(|| RouteError::BadName { index, name: rule.knowledge_base.clone() })?;
    if rule.host.is_none()
        && rule.path_prefix.is_none()
        && rule.glob.is_none()
        && rule.regex.is_none()
    {
        return Err(RouteError::NoCondition { index, knowledge_base });
    }

    let host = rule.host.as_deref().map(|h| compile_host(index, h)).transpose()?;
    let path_prefix = rule.path_prefix.as_deref().map(|p| check_prefix(index, p)).transpose()?;
    let glob = rule.glob.as_deref().map(|g| compile_glob(index, g)).transpose()?;
    let regex = rule.regex.as_deref().map(|r| compile_regex(index, r)).transpose()?;
    Ok(CompiledRule { knowledge_base, host, path_prefix, glob, regex })
}

/// The trimmed name when it fits Dify's 1 to 40 character limit.
fn checked_name(name: &str) -> Option<String> {
    let trimmed = name.trim();
    let chars = trimmed.chars().count();
    (1..=MAX_KNOWLEDGE_BASE_NAME_CHARS).contains(&chars).then(|| trimmed.to_owned())
}

fn compile_host(index: usize, host: &str) -> Result<HostPattern, RouteError> {
    let lowered = host.trim().to_ascii_lowercase();
    let bad = || RouteError::BadHost { index, host: host.to_owned() };
    let (pattern, name) = match lowered.strip_prefix("*.") {
        Some(domain) => (HostPattern::Domain(domain.to_owned()), domain.to_owned()),
        None => (HostPattern::Exact(lowered.clone()), lowered),
    };
    let valid = !name.is_empty()
        && !name.contains(['*', '/', ':', ' '])
        && !name.starts_with('.')
        && !name.ends_with('.');
    if valid { Ok(pattern) } else { Err(bad()) }
}

fn check_prefix(index: usize, prefix: &str) -> Result<String, RouteError> {
    if prefix.starts_with('/') {
        Ok(prefix.to_owned())
    } else {
        Err(RouteError::BadPathPrefix { index, prefix: prefix.to_owned() })
    }
}

fn compile_glob(index: usize, glob: &str) -> Result<GlobMatcher, RouteError> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|source| RouteError::BadGlob { index, glob: glob.to_owned(), source })
}

fn compile_regex(index: usize, regex: &str) -> Result<Regex, RouteError> {
    Regex::new(regex).map_err(|source| RouteError::BadRegex {
        index,
        regex: regex.to_owned(),
        source: Box::new(source),
    })
}

/// The per-host fallback knowledge base for `url`: its host (with the port
/// when it is not the default), cut to Dify's limit.
pub fn host_knowledge_base(url: &Url) -> String {
    let host = url.host_str().unwrap_or("unknown-host");
    let base = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    knowledge_base_name(&base)
}

/// Fits `name` into Dify's 1 to 40 character limit.
///
/// Names within the limit come back unchanged. Longer names keep their start
/// and end with `-` and a short hash of the whole name, so two long names
/// that share a prefix still get distinct knowledge bases. An empty name
/// becomes `"default"`.
pub fn knowledge_base_name(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        return "default".to_owned();
    }
    if name.chars().count() <= MAX_KNOWLEDGE_BASE_NAME_CHARS {
        return name.to_owned();
    }

    let hash = blake3::hash(name.as_bytes()).to_hex();
    let keep = MAX_KNOWLEDGE_BASE_NAME_CHARS - NAME_HASH_CHARS - 1;
    let head: String = name.chars().take(keep).collect();
    format!("{}-{}", head.trim_end_matches(['.', '-', ' ']), &hash[..NAME_HASH_CHARS])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn rule(kb: &str) -> RouteRule {
        RouteRule { knowledge_base: kb.into(), ..RouteRule::default() }
    }

    #[test]
    fn single_sends_everything_to_one_knowledge_base() {
        let router = Router::single("Docs").unwrap();
        assert_eq!(router.route(&url("https://a.example/x")), "Docs");
        assert_eq!(router.route(&url("https://b.example/")), "Docs");
        assert!(Router::single("").is_err());
        assert!(Router::single(&"x".repeat(41)).is_err());
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = vec![
            RouteRule { path_prefix: Some("/api".into()), ..rule("API") },
            RouteRule { host: Some("docs.example.com".into()), ..rule("Docs") },
        ];
        let router = Router::from_rules(&rules).unwrap();
        assert_eq!(router.route(&url("https://docs.example.com/api/x")), "API");
        assert_eq!(router.route(&url("https://docs.example.com/guide")), "Docs");
        assert_eq!(router.route(&url("https://other.example.com/api")), "API");
    }

    #[test]
    fn all_conditions_of_a_rule_must_hold() {
        let rules = vec![RouteRule {
            host: Some("docs.example.com".into()),
            path_prefix: Some("/api".into()),
            ..rule("API")
        }];
        let router = Router::from_rules(&rules).unwrap();
        assert_eq!(router.route(&url("https://docs.example.com/api")), "API");
        assert_eq!(router.route(&url("https://www.example.com/api")), "www.example.com");
    }

    #[test]
    fn path_prefix_stops_at_segment_boundary() {
        assert!(path_has_prefix("/docs", "/docs"));
        assert!(path_has_prefix("/docs/a", "/docs/"));
        assert!(!path_has_prefix("/docsearch", "/docs"));
        assert!(path_has_prefix("/anything", "/"));
    }

    #[test]
    fn host_wildcard_covers_domain_and_subdomains_only() {
        let rules = vec![RouteRule { host: Some("*.Example.com".into()), ..rule("Ex") }];
        let router = Router::from_rules(&rules).unwrap();
        assert_eq!(router.route(&url("https://example.com/")), "Ex");
        assert_eq!(router.route(&url("https://a.b.example.com/")), "Ex");
        assert_eq!(router.route(&url("https://notexample.com/")), "notexample.com");
    }

    #[test]
    fn glob_and_regex_conditions() {
        let rules = vec![
            RouteRule { glob: Some("/blog/*/index.html".into()), ..rule("Blog") },
            RouteRule { regex: Some(r"\?lang=de".into()), ..rule("German") },
        ];
        let router = Router::from_rules(&rules).unwrap();
        assert_eq!(router.route(&url("https://x.example/blog/2026/index.html")), "Blog");
        assert_eq!(router.route(&url("https://x.example/blog/2026/12/index.html")), "x.example");
        assert_eq!(router.route(&url("https://x.example/p?lang=de")), "German");
    }

    #[test]
    fn fallback_is_one_knowledge_base_per_host_with_port() {
        let router = Router::from_rules(&[]).unwrap();
        assert_eq!(router.route(&url("https://docs.example.com/a")), "docs.example.com");
        assert_eq!(router.route(&url("http://127.0.0.1:8080/a")), "127.0.0.1:8080");
    }

    #[test]
    fn bad_rules_are_refused_with_their_position() {
        let cases = vec![
            (rule("No condition"), "rule 1"),
            (RouteRule { regex: Some("(".into()), ..rule("R") }, "invalid regex"),
            (RouteRule { glob: Some("[".into()), ..rule("G") }, "invalid glob"),
            (RouteRule { path_prefix: Some("docs".into()), ..rule("P") }, "must start with"),
            (RouteRule { host: Some("a*.b".into()), ..rule("H") }, "host"),
            (RouteRule { host: Some("a.b".into()), ..rule("") }, "1 to 40"),
        ];
        for (bad, needle) in cases {
            let err = Router::from_rules(std::slice::from_ref(&bad)).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
        let two = [RouteRule { host: Some("a.b".into()), ..rule("A") }, rule("B")];
        let err = Router::from_rules(&two).unwrap_err().to_string();
        assert!(err.starts_with("route rule 2"), "{err}");
    }

    #[test]
    fn long_names_are_cut_with_a_distinguishing_hash() {
        let a =
            knowledge_base_name(&format!("{}.one.example.com", "very-long-subdomain".repeat(2)));
        let b =
            knowledge_base_name(&format!("{}.two.example.com", "very-long-subdomain".repeat(2)));
        assert!(a.chars().count() <= MAX_KNOWLEDGE_BASE_NAME_CHARS, "{a}");
        assert_ne!(a, b);
        assert_eq!(knowledge_base_name("short"), "short");
        assert_eq!(knowledge_base_name("  "), "default");
        let unicode = knowledge_base_name(&"ü".repeat(60));
        assert_eq!(unicode.chars().count(), MAX_KNOWLEDGE_BASE_NAME_CHARS);
    }

    #[test]
    fn pinned_urls_win_over_rules() {
        let pinned = HashMap::from([("https://a.example/x".to_owned(), "Old".to_owned())]);
        let router = Router::single("New").unwrap().pinned(pinned);
        assert_eq!(router.route(&url("https://a.example/x")), "Old");
        assert_eq!(router.route(&url("https://a.example/y")), "New");
    }

    #[test]
    fn named_knowledge_bases_are_listed_once_in_order() {
        let rules = vec![
            RouteRule { host: Some("a.example".into()), ..rule("B") },
            RouteRule { host: Some("b.example".into()), ..rule("A") },
            RouteRule { host: Some("c.example".into()), ..rule("B") },
        ];
        let router = Router::from_rules(&rules).unwrap();
        assert_eq!(router.named_knowledge_bases(), vec!["B", "A"]);
    }
}
