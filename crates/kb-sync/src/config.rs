//! The `dify-crawl.toml` configuration file and the one mapping from it onto
//! the library option structs.
//!
//! Every field is optional; a missing field means "the library default", and
//! the defaults are the `DEFAULT_*` constants of the crate that owns the
//! option, so there is one source of truth for each. The binary loads the
//! file, lays command-line values over the same `Option` fields (command
//! line wins over file, file over default) and then asks [`Config`] for
//! [`CrawlConfig`], [`ExtractOptions`], [`DifySinkOptions`], a [`Router`] and
//! the Dify connection. That is the only place file fields meet library
//! fields.
//!
//! ```toml
//! [dify]
//! base_url = "http://localhost/v1"   # DIFY_BASE_URL wins when set
//! # api_key: prefer the DIFY_API_KEY environment variable
//! write_concurrency = 4
//! requests_per_minute = 100          # Dify Cloud plans; absent = no limit
//!
//! [knowledge_base]
//! indexing_technique = "economy"     # or "high_quality"
//! permission = "only_me"             # or "all_team_members"
//! description = "Crawled by dify-crawl"
//!
//! [chunking]                         # see kb_sync::chunking
//! mode = "hierarchical"
//!
//! [prune]
//! enabled = false
//! mode = "delete"                    # or "disable"
//! after_missed_runs = 1
//! max_share = 0.5                    # never prune more of a base for not being seen
//!
//! [crawl]
//! max_pages = 1000
//! delay_ms = 250
//! no_parent = false                  # true: stay under the start URLs' folders
//! exclude = ["/tag/", "\\?replytocom="]
//!
//! [extract]
//! min_words = 50
//!
//! [[route]]
//! knowledge_base = "API reference"
//! host = "docs.example.com"
//! path_prefix = "/api"
//! ```
//!
//! Unknown fields are errors (a misspelt option silently ignored is worse
//! than a refusal), and every error names the file and the field at fault.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dify_client::{ApiKey, IndexingTechnique, Permission};
use page_extract::ExtractOptions;
use serde::{Deserialize, Deserializer};
use site_crawler::CrawlConfig;

use crate::chunking::ChunkingConfig;
use crate::dify_sink::{DifySinkOptions, MAX_WRITE_CONCURRENCY, PruneMode, PruneOptions};
use crate::route::{RouteError, RouteRule, Router};

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "dify-crawl.toml";

/// Environment variable holding the Dify API base URL.
pub const ENV_BASE_URL: &str = "DIFY_BASE_URL";

/// Environment variable holding the Dify dataset API key.
pub const ENV_API_KEY: &str = "DIFY_API_KEY";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema; the source
    /// names the field, line and column.
    #[error("parsing config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A field holds a value outside what it accepts.
    #[error("{origin}: {field} {reason}")]
    Invalid {
        /// The config file, or "settings" when no file was read.
        origin: String,
        /// The field, as `[section].name`.
        field: String,
        /// What is wrong, e.g. "must be at least 1".
        reason: String,
    },
    /// A `[[route]]` rule is invalid.
    #[error("{origin}: [[route]]")]
    Route {
        /// The config file, or "settings" when no file was read.
        origin: String,
        /// The rule error (it names the rule).
        #[source]
        source: RouteError,
    },
}

/// The whole config file. Every section and field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the file was read from; `None` for built-in defaults.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// `[dify]`: the server and how hard to use it.
    #[serde(default)]
    pub dify: DifySection,
    /// `[knowledge_base]`: settings for knowledge bases this tool creates.
    #[serde(default)]
    pub knowledge_base: KnowledgeBaseSection,
    /// `[chunking]`: how documents are cut; absent = the chunking defaults.
    pub chunking: Option<ChunkingConfig>,
    /// `[prune]`: what happens to documents whose page is gone.
    #[serde(default)]
    pub prune: PruneSection,
    /// `[[route]]`: rules mapping pages to knowledge bases, first match wins.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteRule>,
    /// `[crawl]`: defaults for the crawl options.
    #[serde(default)]
    pub crawl: CrawlSection,
    /// `[extract]`: content extraction options.
    #[serde(default)]
    pub extract: ExtractSection,
}

/// `[dify]`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DifySection {
    /// API base URL, with or without `/v1`. [`ENV_BASE_URL`] wins when set.
    pub base_url: Option<String>,
    /// Dataset API key. [`ENV_API_KEY`] wins when set; prefer it, so the
    /// key stays out of files that get shared.
    #[serde(default, deserialize_with = "api_key")]
    pub api_key: Option<ApiKey>,
    /// Dify writes in flight. Default is the sink's default.
    pub write_concurrency: Option<usize>,
    /// Client-side cap on counted requests per minute (Dify Cloud's plan
    /// limit). Default: no cap.
    pub requests_per_minute: Option<u32>,
    /// Wait for Dify to finish indexing before the run ends. Default: no.
    pub wait_for_indexing: Option<bool>,
}

impl fmt::Debug for DifySection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DifySection")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("write_concurrency", &self.write_concurrency)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("wait_for_indexing", &self.wait_for_indexing)
            .finish()
    }
}

fn api_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ApiKey>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.filter(|k| !k.trim().is_empty()).map(ApiKey::new))
}

/// `[knowledge_base]`: used when a knowledge base has to be created.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseSection {
    /// `economy` or `high_quality`. Default is the sink's default.
    pub indexing_technique: Option<TechniqueSetting>,
    /// `only_me`, `all_team_members` or `partial_members`. Default is the
    /// sink's default.
    pub permission: Option<PermissionSetting>,
    /// Description of created knowledge bases. Default is the sink's.
    pub description: Option<String>,
}

/// `indexing_technique` values. The client's own enum also accepts unknown
/// values (to read any server); a config file must name a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TechniqueSetting {
    /// Keyword index only; needs no embedding model.
    Economy,
    /// Vector index with the workspace's embedding model.
    HighQuality,
}

/// `permission` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionSetting {
    /// Only the key's workspace owner.
    OnlyMe,
    /// Everyone in the workspace.
    AllTeamMembers,
    /// Selected members (chosen in Dify's console).
    PartialMembers,
}

/// `[prune].mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneModeSetting {
    /// Delete the document.
    Delete,
    /// Disable it, keeping it in Dify out of retrieval.
    Disable,
}

/// `[prune]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSection {
    /// Remove documents whose page is gone. Default: no (`--prune` turns it
    /// on for one run).
    pub enabled: Option<bool>,
    /// `delete` or `disable`. Default is the sink's default.
    pub mode: Option<PruneModeSetting>,
    /// Complete crawls a page may be missing from before it is pruned.
    /// Default is the sink's default.
    pub after_missed_runs: Option<u32>,
    /// Largest share (0.0 to 1.0) of a knowledge base's documents one run
    /// may prune for not being seen; 1.0 turns the check off. Default is
    /// the sink's default.
    pub max_share: Option<f64>,
}

/// `[crawl]`: each field defaults to the crawler's `DEFAULT_*` constant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlSection {
    /// Start URLs added to those given on the command line.
    #[serde(default)]
    pub urls: Vec<String>,
    /// Cap on pages fetched.
    pub max_pages: Option<usize>,
    /// Deepest link level followed.
    pub max_depth: Option<usize>,
    /// URL regexes of which one must match (start URLs exempt).
    #[serde(default)]
    pub include: Vec<String>,
    /// URL regexes of which none may match.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Requests in flight across all hosts.
    pub concurrency: Option<usize>,
    /// Requests in flight to one host.
    pub per_host: Option<usize>,
    /// Pause between two requests to one host, in milliseconds.
    pub delay_ms: Option<u64>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// Obey robots.txt. Turning it off is rude and may get you blocked.
    pub respect_robots: Option<bool>,
    /// Seed the crawl from sitemaps.
    pub sitemaps: Option<bool>,
    /// Stay under the start URLs' folders (wget's `--no-parent`).
    pub no_parent: Option<bool>,
    /// Treat subdomains of the start hosts as in scope.
    pub allow_subdomains: Option<bool>,
    /// Further hosts in scope.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// Whole-request timeout in seconds.
    pub timeout_secs: Option<u64>,
    /// Largest page body accepted, in bytes.
    pub max_body_bytes: Option<u64>,
}

/// `[extract]`: each field defaults to the extractor's `DEFAULT_*` constant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSection {
    /// Pages with fewer words of main content are skipped.
    pub min_words: Option<usize>,
    /// Start the Markdown with `# Title` when the content lacks it.
    pub prepend_title: Option<bool>,
}

/// Where Dify is and the key to use, resolved from environment and file.
#[derive(Clone)]
pub struct DifyConnection {
    /// The API base URL.
    pub base_url: String,
    /// The API key (its `Debug` is redacted).
    pub api_key: ApiKey,
}

impl fmt::Debug for DifyConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DifyConnection")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl Config {
    /// Reads and parses `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] or [`ConfigError::Parse`]; the parse error
    /// names the field, line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text, path)
    }

    /// Reads `path` when given, else [`DEFAULT_CONFIG_FILE`] when it exists
    /// in the working directory, else returns the built-in defaults.
    ///
    /// # Errors
    ///
    /// As [`Config::load`]; an explicit `path` that does not exist is an
    /// error, a missing default file is not.
    pub fn discover(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => Config::load(path),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                Config::load(Path::new(DEFAULT_CONFIG_FILE))
            }
            None => Ok(Config::default()),
        }
    }

    /// Parses `text`, naming `path` in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`].
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Checks values the schema cannot: ranges, permission names, chunking
    /// limits and route rules.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(n) = self.dify.write_concurrency
            && !(1..=MAX_WRITE_CONCURRENCY).contains(&n)
        {
            let reason = format!("must be 1 to {MAX_WRITE_CONCURRENCY}");
            return Err(self.invalid("[dify].write_concurrency", &reason));
        }
        self.at_least_one("[crawl].concurrency", self.crawl.concurrency)?;
        self.at_least_one("[crawl].per_host", self.crawl.per_host)?;
        self.at_least_one("[crawl].max_pages", self.crawl.max_pages)?;
        if self.dify.requests_per_minute == Some(0) {
            return Err(self.invalid("[dify].requests_per_minute", "must be at least 1"));
        }
        if self.prune.max_share.is_some_and(|share| !(0.0..=1.0).contains(&share)) {
            return Err(self.invalid("[prune].max_share", "must be 0.0 to 1.0"));
        }
        if self.knowledge_base.description.as_ref().is_some_and(|d| d.chars().count() > 400) {
            return Err(self.invalid("[knowledge_base].description", "is over 400 characters"));
        }
        for (field, patterns) in
            [("[crawl].include", &self.crawl.include), ("[crawl].exclude", &self.crawl.exclude)]
        {
            if let Some(Err(err)) =
                patterns.iter().map(|p| regex::Regex::new(p)).find(Result::is_err)
            {
                return Err(self.invalid(field, &format!("holds an invalid regex: {err}")));
            }
        }
        if let Some(chunking) = &self.chunking {
            chunking.validate().map_err(|e| self.invalid("[chunking]", &e.to_string()))?;
        }
        Router::from_rules(&self.routes)
            .map_err(|source| ConfigError::Route { origin: self.origin(), source })?;
        Ok(())
    }

    /// The crawler configuration for `start_urls` plus `[crawl].urls`.
    pub fn crawl_config(&self, start_urls: &[String]) -> CrawlConfig {
        let c = &self.crawl;
        let defaults = CrawlConfig::default();
        let mut urls = start_urls.to_vec();
        urls.extend(c.urls.iter().filter(|u| !start_urls.contains(u)).cloned());
        CrawlConfig {
            start_urls: urls,
            max_pages: c.max_pages.unwrap_or(defaults.max_pages),
            max_depth: c.max_depth.unwrap_or(defaults.max_depth),
            include: c.include.clone(),
            exclude: c.exclude.clone(),
            concurrency: c.concurrency.unwrap_or(defaults.concurrency),
            per_host: c.per_host.unwrap_or(defaults.per_host),
            delay: c.delay_ms.map_or(defaults.delay, Duration::from_millis),
            user_agent: c.user_agent.clone().unwrap_or(defaults.user_agent.clone()),
            respect_robots: c.respect_robots.unwrap_or(defaults.respect_robots),
            sitemaps: c.sitemaps.unwrap_or(defaults.sitemaps),
            no_parent: c.no_parent.unwrap_or(defaults.no_parent),
            allow_subdomains: c.allow_subdomains.unwrap_or(defaults.allow_subdomains),
            extra_hosts: c.extra_hosts.clone(),
            timeout: c.timeout_secs.map_or(defaults.timeout, Duration::from_secs),
            max_body_bytes: c.max_body_bytes.unwrap_or(defaults.max_body_bytes),
            ..defaults
        }
    }

    /// The extractor options.
    pub fn extract_options(&self) -> ExtractOptions {
        let defaults = ExtractOptions::default();
        ExtractOptions {
            min_words: self.extract.min_words.unwrap_or(defaults.min_words),
            prepend_title: self.extract.prepend_title.unwrap_or(defaults.prepend_title),
            ..defaults
        }
    }

    /// The Dify sink options; `dry_run` and `prune` come from the command
    /// line (`prune` forces pruning on for this run).
    pub fn sink_options(&self, dry_run: bool, prune: bool) -> DifySinkOptions {
        let defaults = DifySinkOptions::default();
        let kb = &self.knowledge_base;
        DifySinkOptions {
            indexing_technique: kb.indexing_technique.map_or(defaults.indexing_technique, |t| {
                match t {
                    TechniqueSetting::Economy => IndexingTechnique::Economy,
                    TechniqueSetting::HighQuality => IndexingTechnique::HighQuality,
                }
            }),
            permission: kb.permission.map_or(defaults.permission, |p| match p {
                PermissionSetting::OnlyMe => Permission::OnlyMe,
                PermissionSetting::AllTeamMembers => Permission::AllTeamMembers,
                PermissionSetting::PartialMembers => Permission::PartialMembers,
            }),
            description: kb.description.clone().or(defaults.description.clone()),
            chunking: self.chunking.clone().unwrap_or(defaults.chunking.clone()),
            write_concurrency: self.dify.write_concurrency.unwrap_or(defaults.write_concurrency),
            wait_for_indexing: self.dify.wait_for_indexing.unwrap_or(defaults.wait_for_indexing),
            prune: self.prune_options(prune, &defaults.prune),
            dry_run,
            ..defaults
        }
    }

    fn prune_options(&self, forced: bool, defaults: &PruneOptions) -> PruneOptions {
        let p = &self.prune;
        PruneOptions {
            enabled: forced || p.enabled.unwrap_or(defaults.enabled),
            mode: p.mode.map_or(defaults.mode, |m| match m {
                PruneModeSetting::Delete => PruneMode::Delete,
                PruneModeSetting::Disable => PruneMode::Disable,
            }),
            after_missed_runs: p.after_missed_runs.unwrap_or(defaults.after_missed_runs),
            max_share: p.max_share.unwrap_or(defaults.max_share),
        }
    }

    /// The router: everything to `knowledge_base` when given (`--kb`),
    /// else the `[[route]]` rules with the per-host fallback.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Route`] for an invalid rule or `--kb` name.
    pub fn router(&self, knowledge_base: Option<&str>) -> Result<Router, ConfigError> {
        let router = match knowledge_base {
            Some(name) => Router::single(name),
            None => Router::from_rules(&self.routes),
        };
        router.map_err(|source| ConfigError::Route { origin: self.origin(), source })
    }

    /// The Dify server to use: base URL and key from the environment
    /// ([`ENV_BASE_URL`], [`ENV_API_KEY`]) or else the file. `None` when
    /// either is missing, which means "export only".
    pub fn dify_connection(&self) -> Option<DifyConnection> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base_url = env(ENV_BASE_URL).or_else(|| self.dify.base_url.clone())?;
        let api_key = env(ENV_API_KEY).map(ApiKey::new).or_else(|| self.dify.api_key.clone())?;
        Some(DifyConnection { base_url, api_key })
    }

    /// When exactly one of base URL and key is configured, the name of the
    /// missing one. The binary refuses to run then: exporting only would
    /// look like a successful sync.
    pub fn half_configured_dify(&self) -> Option<&'static str> {
        let env = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let has_url = env(ENV_BASE_URL) || self.dify.base_url.is_some();
        let has_key = env(ENV_API_KEY) || self.dify.api_key.is_some();
        match (has_url, has_key) {
            (true, false) => Some(ENV_API_KEY),
            (false, true) => Some(ENV_BASE_URL),
            _ => None,
        }
    }

    /// Requests per minute for the Dify client's limiter, when capped.
    pub fn requests_per_minute(&self) -> Option<u32> {
        self.dify.requests_per_minute
    }

    fn at_least_one(&self, field: &str, value: Option<usize>) -> Result<(), ConfigError> {
        match value {
            Some(0) => Err(self.invalid(field, "must be at least 1")),
            _ => Ok(()),
        }
    }

    fn invalid(&self, field: &str, reason: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin(),
            field: field.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn origin(&self) -> String {
        match &self.source {
            Some(path) => format!("config file {}", path.display()),
            None => "settings".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    fn chain(err: &dyn std::error::Error) -> String {
        let mut out = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }

    #[test]
    fn empty_file_gives_library_defaults() {
        let config = parse("").unwrap();
        config.validate().unwrap();
        let crawl = config.crawl_config(&["https://x.example/".into()]);
        assert_eq!(crawl.max_pages, site_crawler::DEFAULT_MAX_PAGES);
        assert_eq!(crawl.delay, site_crawler::DEFAULT_DELAY);
        assert!(crawl.respect_robots);
        assert_eq!(config.extract_options(), ExtractOptions::default());
        let sink = config.sink_options(false, false);
        let defaults = DifySinkOptions::default();
        assert_eq!(sink.write_concurrency, defaults.write_concurrency);
        assert_eq!(sink.indexing_technique, defaults.indexing_technique);
        assert_eq!(sink.prune, defaults.prune);
        assert_eq!(sink.chunking, defaults.chunking);
    }

    #[test]
    fn fields_map_onto_library_options() {
        let config = parse(
            r#"
            [dify]
            write_concurrency = 8
            [knowledge_base]
            indexing_technique = "high_quality"
            permission = "all_team_members"
            [prune]
            mode = "disable"
            [crawl]
            urls = ["https://b.example/"]
            max_pages = 5
            delay_ms = 0
            exclude = ["/tag/"]
            respect_robots = false
            [extract]
            min_words = 3
            "#,
        )
        .unwrap();
        config.validate().unwrap();

        let crawl = config.crawl_config(&["https://a.example/".into()]);
        assert_eq!(crawl.start_urls, vec!["https://a.example/", "https://b.example/"]);
        assert_eq!((crawl.max_pages, crawl.delay), (5, Duration::ZERO));
        assert_eq!(crawl.exclude, vec!["/tag/"]);
        assert!(!crawl.respect_robots);
        assert_eq!(config.extract_options().min_words, 3);

        let sink = config.sink_options(true, true);
        assert_eq!(sink.write_concurrency, 8);
        assert_eq!(sink.indexing_technique, IndexingTechnique::HighQuality);
        assert_eq!(sink.permission, Permission::AllTeamMembers);
        assert!(sink.dry_run && sink.prune.enabled);
        assert_eq!(sink.prune.mode, PruneMode::Disable);
    }

    #[test]
    fn unknown_and_mistyped_fields_name_file_and_field() {
        let err = parse("[crawl]\nmax_page = 3\n").unwrap_err();
        let text = chain(&err);
        assert!(text.contains("test.toml") && text.contains("max_page"), "{text}");

        let err = parse("[chunking]\nfull_doc_max_word = 10\n").unwrap_err();
        let text = chain(&err);
        assert!(text.contains("full_doc_max_word"), "{text}");

        let err = parse("[dify]\nwrite_concurrency = \"many\"\n").unwrap_err();
        let text = chain(&err);
        assert!(text.contains("test.toml") && text.contains("write_concurrency"), "{text}");
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let err = parse("[knowledge_base]\npermission = \"everyone\"\n").unwrap_err();
        let text = chain(&err);
        assert!(text.contains("everyone") && text.contains("only_me"), "{text}");
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let cases = [
            ("[dify]\nwrite_concurrency = 0", "[dify].write_concurrency"),
            ("[crawl]\nconcurrency = 0", "[crawl].concurrency"),
            ("[knowledge_base]\ndescription = \"{long}\"", "[knowledge_base].description"),
            ("[[route]]\nknowledge_base = \"x\"\nregex = \"(\"", "[[route]]"),
            ("[crawl]\nexclude = [\"ok\", \"[\"]", "[crawl].exclude"),
        ];
        for (text, field) in cases {
            let text = text.replace("{long}", &"d".repeat(401));
            let err = parse(&text).unwrap().validate().unwrap_err();
            let message = chain(&err);
            assert!(message.contains("test.toml") && message.contains(field), "{message}");
        }
    }

    #[test]
    fn api_key_never_shows_in_debug() {
        let config = parse("[dify]\napi_key = \"dataset-secret-123\"\n").unwrap();
        assert!(!format!("{config:?}").contains("secret-123"));
        let connection = DifyConnection {
            base_url: "http://127.0.0.1:1".into(),
            api_key: ApiKey::new("dataset-secret-123"),
        };
        assert!(!format!("{connection:?}").contains("secret-123"));
    }

    #[test]
    fn kb_flag_overrides_rules() {
        let config = parse("[[route]]\nknowledge_base = \"Docs\"\nhost = \"a.example\"\n").unwrap();
        let url = url::Url::parse("https://a.example/x").unwrap();
        assert_eq!(config.router(None).unwrap().route(&url), "Docs");
        assert_eq!(config.router(Some("All")).unwrap().route(&url), "All");
        assert!(config.router(Some("")).is_err());
    }
}
