//! The local state store: what this tool knows about every page it synced.
//!
//! One SQLite file (bundled SQLite, WAL journal) records per URL the target
//! knowledge base, the Dify document name and id, the hash of the content
//! Dify holds, HTTP validators, when it was seen and synced, the stage it
//! reached and the last error, and the content still to be sent (so `retry`
//! can resend without crawling). Beside the pages it keeps the runs, the known
//! datasets and their metadata field ids, metadata assignments not yet
//! applied, and documents found by reconciliation (see [`crate::dify_sink`]).
//!
//! Concurrency: one connection behind a `std::sync::Mutex`. Every method runs
//! one short statement or transaction (microseconds with WAL and
//! `synchronous=NORMAL`) and never holds the lock across an `.await`, so
//! calling it from async code blocks a worker no longer than a channel send
//! would. Moving each call to `spawn_blocking` would add a thread hop per
//! statement and let writes of one page reorder; the sink's crash-safety
//! argument needs them in program order.
//!
//! Durability: WAL with `synchronous=NORMAL` survives a killed process (a
//! committed transaction is in the WAL file before `COMMIT` returns); only an
//! OS crash or power loss can drop the last transactions, which the sink's
//! idempotent writes then repeat.
//!
//! The schema is versioned with `PRAGMA user_version`; `MIGRATIONS` holds
//! one step per version and runs at open inside one transaction.
//!
//! A page's links are stored beside its validators (a JSON array in
//! `pages.links`): a 304 answer has no body, so the crawler follows the
//! stored links instead. `NULL` means the links are unknown (rows from
//! before version 2), and such a page gets no validators: it is fetched in
//! full once and its links recorded, rather than ending the crawl at a 304.
//!
//! One run at a time: [`StateStore::open`] takes an exclusive advisory lock
//! on a file beside the store (`<store>.lock`), held until the last clone of
//! the store is dropped, so a second run on the same file fails at once
//! instead of interleaving its writes. A dry run opens the store with
//! [`StateStore::open_read_only`]: read-only, without the lock, and in
//! memory when the file does not exist, so planning never creates or
//! changes it.
//!
//! Version 3 added what recovery needs to be repeatable: a per-dataset
//! `reconciled` marker (set only after a complete listing), the run that
//! listed each reconciled document, the crawl scope of each run (pruning
//! counts a missed run only for pages inside it), and the documents a page
//! left behind when routing moved it (deleted once the new one exists).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::page::PageRecord;

/// The store file used when none is configured, in the working directory.
pub const DEFAULT_STATE_PATH: &str = "dify-crawl.sqlite3";

/// Schema steps; entry `i` upgrades `user_version` `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    crawl_complete  INTEGER,
    summary         TEXT
);
CREATE TABLE run_knowledge_bases (
    run_id          INTEGER NOT NULL,
    knowledge_base  TEXT NOT NULL,
    PRIMARY KEY (run_id, knowledge_base)
);
CREATE TABLE datasets (
    name                TEXT PRIMARY KEY,
    dataset_id          TEXT NOT NULL,
    indexing_technique  TEXT,
    doc_form            TEXT
);
CREATE TABLE metadata_fields (
    dataset_id  TEXT NOT NULL,
    name        TEXT NOT NULL,
    field_id    TEXT NOT NULL,
    field_type  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, name)
);
CREATE TABLE pages (
    url              TEXT PRIMARY KEY,
    knowledge_base   TEXT NOT NULL DEFAULT '',
    dataset_id       TEXT,
    document_name    TEXT NOT NULL,
    document_id      TEXT,
    content_hash     TEXT,
    metadata_hash    TEXT,
    etag             TEXT,
    last_modified    TEXT,
    sitemap_lastmod  TEXT,
    first_seen_run   INTEGER NOT NULL,
    last_seen_run    INTEGER NOT NULL,
    last_synced_at   INTEGER,
    stage            TEXT NOT NULL,
    failed_stage     TEXT,
    last_error       TEXT,
    pending_hash     TEXT,
    pending_page     TEXT,
    indexing_batch   TEXT,
    indexing_status  TEXT,
    gone             INTEGER NOT NULL DEFAULT 0,
    disabled_by_sync INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pages_by_document ON pages (document_id);
CREATE INDEX pages_by_kb ON pages (knowledge_base, stage);
CREATE TABLE pending_metadata (
    url          TEXT PRIMARY KEY,
    dataset_id   TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    values_json  TEXT NOT NULL,
    seq          INTEGER NOT NULL
);
CREATE INDEX pending_metadata_by_dataset ON pending_metadata (dataset_id, seq);
CREATE TABLE remote_documents (
    dataset_id      TEXT NOT NULL,
    name            TEXT NOT NULL,
    document_id     TEXT NOT NULL,
    content_hash    TEXT,
    metadata_hash   TEXT,
    display_status  TEXT,
    PRIMARY KEY (dataset_id, name)
);
"#,
    "ALTER TABLE pages ADD COLUMN links TEXT;",
    r#"
ALTER TABLE datasets ADD COLUMN reconciled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN scope TEXT;
ALTER TABLE remote_documents ADD COLUMN listed_run INTEGER;
CREATE TABLE moved_documents (
    url          TEXT NOT NULL,
    dataset_id   TEXT NOT NULL,
    document_id  TEXT NOT NULL,
    PRIMARY KEY (dataset_id, document_id)
);
CREATE INDEX moved_documents_by_url ON moved_documents (url);
"#,
];

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The file could not be opened or prepared.
    #[error("cannot open state store {}", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of this tool.
    #[error("state store schema version {found} is newer than supported version {supported}")]
    SchemaTooNew {
        /// `user_version` in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A query failed.
    #[error("state store query failed")]
    Query(#[from] rusqlite::Error),
    /// Stored JSON could not be read back.
    #[error("state store holds unreadable pending content")]
    Json(#[from] serde_json::Error),
    /// Another thread panicked while holding the connection.
    #[error("state store connection was poisoned by a panic")]
    Poisoned,
    /// Another process holds the store's lock.
    #[error(
        "another dify-crawl run is using {} (wait for it to finish, or use --state for a \
         separate store)",
        path.display()
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
}

/// Where a page is on its way into Dify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Found, not yet fetched.
    Discovered,
    /// Fetched, not yet extracted.
    Fetched,
    /// Extracted, not yet compared with the store.
    Extracted,
    /// Intent recorded; the write to Dify may or may not have happened.
    Planned,
    /// Dify holds the content; the document id is known.
    Written,
    /// Metadata applied; indexing still awaited (`--wait` runs only).
    MetadataApplied,
    /// Content and metadata are in Dify.
    Synced,
    /// The last attempt failed; see `failed_stage` and `last_error`.
    Failed,
}

impl Stage {
    /// All stages, in order.
    pub const ALL: [Stage; 8] = [
        Stage::Discovered,
        Stage::Fetched,
        Stage::Extracted,
        Stage::Planned,
        Stage::Written,
        Stage::MetadataApplied,
        Stage::Synced,
        Stage::Failed,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Discovered => "discovered",
            Stage::Fetched => "fetched",
            Stage::Extracted => "extracted",
            Stage::Planned => "planned",
            Stage::Written => "written",
            Stage::MetadataApplied => "metadata_applied",
            Stage::Synced => "synced",
            Stage::Failed => "failed",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == text)
    }

    /// Whether Dify holds the page's content (the document id is known).
    pub fn content_in_dify(self) -> bool {
        matches!(self, Stage::Written | Stage::MetadataApplied | Stage::Synced)
    }
}

/// A run's id; pages remember the last run that saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RunId(pub i64);

/// The hosts a run's crawl could reach. A complete run counts as having
/// missed a page only when the page's host lies inside it, so two crawls of
/// different sites into one knowledge base never prune each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunScope {
    /// Hosts of the start URLs and the extra allowed hosts, lowercase.
    pub hosts: BTreeSet<String>,
    /// Subdomains of those hosts are in scope too.
    pub subdomains: bool,
}

impl RunScope {
    /// The scope of a crawl: its start URLs' hosts and extra hosts.
    pub fn of_crawl(crawl: &site_crawler::CrawlConfig) -> RunScope {
        let start = crawl.start_urls.iter().filter_map(|url| host_of(url));
        let extra = crawl.extra_hosts.iter().filter_map(|host| {
            if host.contains("://") { host_of(host) } else { host_of(&format!("http://{host}/")) }
        });
        RunScope { hosts: start.chain(extra).collect(), subdomains: crawl.allow_subdomains }
    }

    /// Whether the page at `url` lies inside the scope.
    pub fn contains(&self, url: &str) -> bool {
        let Some(host) = host_of(url) else { return false };
        self.hosts.contains(&host)
            || (self.subdomains
                && self.hosts.iter().any(|parent| {
                    host.strip_suffix(parent.as_str()).is_some_and(|rest| rest.ends_with('.'))
                }))
    }
}

fn host_of(url: &str) -> Option<String> {
    Url::parse(url.trim()).ok()?.host_str().filter(|h| !h.is_empty()).map(str::to_owned)
}

/// HTTP validators of a page, for conditional requests, with the page's
/// links to follow when it answers 304.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Validators {
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Last-Modified` header.
    pub last_modified: Option<String>,
    /// The page's links, from [`PageRecord::links`]; empty when unknown.
    pub links: Vec<String>,
}

/// What the store knows about one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageState {
    /// The identity URL.
    pub url: String,
    /// The routed knowledge base; empty before routing.
    pub knowledge_base: String,
    /// The Dify dataset id of that knowledge base, once known.
    pub dataset_id: Option<String>,
    /// The Dify document name (from [`crate::naming::document_name`]).
    pub document_name: String,
    /// The Dify document id, once a write returned it.
    pub document_id: Option<String>,
    /// Hash of the content Dify holds.
    pub content_hash: Option<String>,
    /// Fingerprint of the descriptive metadata last queued.
    pub metadata_hash: Option<String>,
    /// Validators of the last fetch.
    pub validators: Validators,
    /// The `lastmod` a sitemap gave.
    pub sitemap_lastmod: Option<String>,
    /// The first run that saw the page.
    pub first_seen_run: RunId,
    /// The last run that saw the page.
    pub last_seen_run: RunId,
    /// Unix time of the last full sync.
    pub last_synced_at: Option<i64>,
    /// Where the page is.
    pub stage: Stage,
    /// The stage that failed last.
    pub failed_stage: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// Hash of the content being written.
    pub pending_hash: Option<String>,
    /// The indexing batch of the last write.
    pub indexing_batch: Option<String>,
    /// The last known indexing status.
    pub indexing_status: Option<String>,
    /// The site answered 404 or 410.
    pub gone: bool,
    /// Pruning disabled the document; it is enabled again if the page
    /// returns.
    pub disabled_by_sync: bool,
}

/// The intent to write a page, recorded before the write.
#[derive(Debug, Clone)]
pub struct Intent<'a> {
    /// The page to write.
    pub page: &'a PageRecord,
    /// The dataset it goes to.
    pub dataset_id: &'a str,
    /// Its document name.
    pub document_name: &'a str,
    /// Fingerprint of its descriptive metadata.
    pub metadata_hash: &'a str,
    /// The current run.
    pub run: RunId,
}

/// A metadata assignment waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMetadata {
    /// The page URL.
    pub url: String,
    /// The Dify document id.
    pub document_id: String,
    /// Values keyed by field name, as JSON.
    pub values_json: String,
}

/// A failed page for reports and `retry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedPage {
    /// The page URL.
    pub url: String,
    /// Its knowledge base (empty before routing).
    pub knowledge_base: String,
    /// The stage that failed.
    pub stage: String,
    /// The error.
    pub error: String,
}

/// Why a document may be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneReason {
    /// The site answered 404 or 410.
    Gone,
    /// Complete crawls of its knowledge base stopped finding the page.
    Missed {
        /// How many complete runs missed it.
        runs: u32,
    },
}

/// A document eligible for pruning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneCandidate {
    /// The page URL.
    pub url: String,
    /// Its knowledge base.
    pub knowledge_base: String,
    /// Its dataset.
    pub dataset_id: Option<String>,
    /// Its document, if one was written.
    pub document_id: Option<String>,
    /// Its document name, to find a document whose id was never recorded.
    pub document_name: String,
    /// Why it qualifies.
    pub reason: PruneReason,
}

/// What a run that writes nothing (a dry run) saw, for
/// [`StateStore::plan_prune`].
#[derive(Debug, Clone, Copy)]
pub struct Unrecorded<'a> {
    /// Pages the run fetched (or found unchanged, or failed to fetch).
    pub seen: &'a HashSet<String>,
    /// Pages that answered 404 or 410.
    pub gone: &'a HashSet<String>,
    /// Whether the run's crawl covered the knowledge base.
    pub covers_kb: bool,
    /// The run's scope; `None` covers every page.
    pub scope: Option<&'a RunScope>,
}

/// A known dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    /// The Dify dataset id.
    pub dataset_id: String,
    /// Its indexing technique.
    pub indexing_technique: Option<String>,
    /// Its `doc_form`, once it has documents.
    pub doc_form: Option<String>,
}

/// A document found in Dify by reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDocument {
    /// The Dify document id.
    pub document_id: String,
    /// The `content_hash` metadata value, when set.
    pub content_hash: Option<String>,
    /// Fingerprint of its descriptive metadata values.
    pub metadata_hash: Option<String>,
    /// Its `display_status`.
    pub display_status: Option<String>,
    /// The run whose listing found it; a listing of an earlier run may be
    /// stale (the document deleted since).
    pub listed_run: Option<RunId>,
}

/// Where a reconciled document belongs, for
/// [`StateStore::seed_reconciled_page`].
#[derive(Debug, Clone, Copy)]
pub struct ReconciledPage<'a> {
    /// The knowledge base name.
    pub knowledge_base: &'a str,
    /// Its dataset id.
    pub dataset_id: &'a str,
    /// The listed document.
    pub document: &'a RemoteDocument,
    /// The current run.
    pub run: RunId,
}

/// A page with content still to send, for `retry`.
#[derive(Debug, Clone)]
pub struct PendingPage {
    /// What the store knows.
    pub state: PageState,
    /// The page to resend.
    pub page: PageRecord,
}

/// Serializable copy of a [`PageRecord`], kept until the page is synced.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPage {
    url: String,
    knowledge_base: String,
    title: Option<String>,
    description: Option<String>,
    language: Option<String>,
    published: Option<String>,
    modified: Option<String>,
    markdown: String,
    content_hash: String,
    word_count: u64,
    etag: Option<String>,
    last_modified: Option<String>,
    sitemap_lastmod: Option<String>,
    crawled_at: i64,
    #[serde(default)]
    links: Vec<String>,
}

impl From<&PageRecord> for StoredPage {
    fn from(page: &PageRecord) -> Self {
        StoredPage {
            url: page.url.to_string(),
            knowledge_base: page.knowledge_base.clone(),
            title: page.title.clone(),
            description: page.description.clone(),
            language: page.language.clone(),
            published: page.published.clone(),
            modified: page.modified.clone(),
            markdown: page.markdown.clone(),
            content_hash: page.content_hash.clone(),
            word_count: page.word_count,
            etag: page.etag.clone(),
            last_modified: page.last_modified.clone(),
            sitemap_lastmod: page.sitemap_lastmod.clone(),
            crawled_at: page.crawled_at.unix_timestamp(),
            links: page.links.clone(),
        }
    }
}

impl StoredPage {
    fn into_page(self) -> Option<PageRecord> {
        Some(PageRecord {
            url: Url::parse(&self.url).ok()?,
            knowledge_base: self.knowledge_base,
            title: self.title,
            description: self.description,
            language: self.language,
            published: self.published,
            modified: self.modified,
            markdown: self.markdown,
            content_hash: self.content_hash,
            word_count: self.word_count,
            etag: self.etag,
            last_modified: self.last_modified,
            sitemap_lastmod: self.sitemap_lastmod,
            crawled_at: OffsetDateTime::from_unix_timestamp(self.crawled_at).ok()?,
            links: self.links,
        })
    }
}

/// The SQLite state store; clones share one connection (and the run lock).
#[derive(Clone)]
pub struct StateStore {
    shared: Arc<Shared>,
    path: PathBuf,
    created: bool,
    read_only: bool,
}

/// The connection and the lock that keeps other runs out; the connection
/// is declared first so it closes before the lock is released.
struct Shared {
    conn: Mutex<Connection>,
    _lock: Option<File>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .field("created", &self.created)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// The lock file beside a store file.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the exclusive run lock of the store at `path`. A file system
/// without advisory locks only costs the protection, not the run.
fn take_lock(path: &Path) -> Result<Option<File>, StateError> {
    let lock = lock_path(path);
    let file = match File::options().create(true).truncate(false).write(true).open(&lock) {
        Ok(file) => file,
        Err(error) => {
            tracing::warn!(path = %lock.display(), %error, "cannot create the run lock file");
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StateError::Locked { path: path.to_path_buf() })
        }
        Err(std::fs::TryLockError::Error(error)) => {
            tracing::warn!(path = %lock.display(), %error, "cannot lock the state store");
            Ok(None)
        }
    }
}

const PAGE_COLUMNS: &str = "url, knowledge_base, dataset_id, document_name, document_id, \
    content_hash, metadata_hash, etag, last_modified, sitemap_lastmod, first_seen_run, \
    last_seen_run, last_synced_at, stage, failed_stage, last_error, pending_hash, \
    indexing_batch, indexing_status, gone, disabled_by_sync, links";

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Links stored as JSON; `None` when unknown (`NULL`) or unreadable, which
/// callers treat alike: the page must be fetched in full to learn them.
fn links_from_json(text: Option<String>) -> Option<Vec<String>> {
    serde_json::from_str(&text?).ok()
}

fn links_json(links: &[String]) -> String {
    // A list of strings always serializes.
    serde_json::to_string(links).unwrap_or_else(|_| "[]".to_owned())
}

fn page_from_row(row: &Row<'_>) -> rusqlite::Result<PageState> {
    let stage: String = row.get(13)?;
    Ok(PageState {
        url: row.get(0)?,
        knowledge_base: row.get(1)?,
        dataset_id: row.get(2)?,
        document_name: row.get(3)?,
        document_id: row.get(4)?,
        content_hash: row.get(5)?,
        metadata_hash: row.get(6)?,
        validators: Validators {
            etag: row.get(7)?,
            last_modified: row.get(8)?,
            links: links_from_json(row.get(21)?).unwrap_or_default(),
        },
        sitemap_lastmod: row.get(9)?,
        first_seen_run: RunId(row.get(10)?),
        last_seen_run: RunId(row.get(11)?),
        last_synced_at: row.get(12)?,
        stage: Stage::parse(&stage).unwrap_or(Stage::Failed),
        failed_stage: row.get(14)?,
        last_error: row.get(15)?,
        pending_hash: row.get(16)?,
        indexing_batch: row.get(17)?,
        indexing_status: row.get(18)?,
        gone: row.get(19)?,
        disabled_by_sync: row.get(20)?,
    })
}

impl StateStore {
    /// Opens (or creates) the store at `path`, takes its run lock and
    /// brings its schema up to date.
    ///
    /// # Errors
    /// [`StateError::Locked`] when another run holds the store,
    /// [`StateError::Open`] when the file cannot be opened or migrated,
    /// [`StateError::SchemaTooNew`] for a file from a newer version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let lock = take_lock(&path)?;
        let created = !path.exists();
        let conn = open_writable(&path)?;
        tracing::debug!(path = %path.display(), created, "opened state store");
        let shared = Arc::new(Shared { conn: Mutex::new(conn), _lock: lock });
        Ok(StateStore { shared, path, created, read_only: false })
    }

    /// Opens the store for reading only (a dry run, `dify-crawl status`):
    /// read-only when the file exists (its schema upgraded first if it is
    /// older), an empty store in memory when it does not, so reading never
    /// creates the file. No run lock is taken, so this works while a run is
    /// going on.
    ///
    /// # Errors
    /// As [`StateStore::open`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source| StateError::Open { path: path.clone(), source };
        if !path.exists() {
            let mut conn = Connection::open_in_memory().map_err(open_error)?;
            migrate(&mut conn).map_err(|err| query_to_open(err, &path))?;
            let shared = Arc::new(Shared { conn: Mutex::new(conn), _lock: None });
            return Ok(StateStore { shared, path, created: true, read_only: true });
        }

        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(open_error)?;
        let found: i64 =
            conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(open_error)?;
        if found < schema_version() {
            drop(conn);
            let lock = take_lock(&path)?;
            drop(open_writable(&path)?);
            drop(lock);
            conn = Connection::open_with_flags(&path, flags).map_err(open_error)?;
        }
        migrate(&mut conn).map_err(|err| query_to_open(err, &path))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_error)?;
        tracing::debug!(path = %path.display(), "opened state store read-only");
        let shared = Arc::new(Shared { conn: Mutex::new(conn), _lock: None });
        Ok(StateStore { shared, path, created: false, read_only: true })
    }

    /// Whether [`StateStore::open`] created the file.
    pub fn was_created(&self) -> bool {
        self.created
    }

    /// Whether the store was opened for a dry run and refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StateError> {
        self.shared.conn.lock().map_err(|_| StateError::Poisoned)
    }

    /// Starts a run and returns its id.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn begin_run(&self) -> Result<RunId, StateError> {
        let conn = self.conn()?;
        conn.execute("INSERT INTO runs (started_at) VALUES (?1)", [now()])?;
        Ok(RunId(conn.last_insert_rowid()))
    }

    /// The id the next run would get, for a dry run that records none.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn next_run_id(&self) -> Result<RunId, StateError> {
        let next: i64 =
            self.conn()?
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM runs", [], |row| row.get(0))?;
        Ok(RunId(next))
    }

    /// Records the hosts a run's crawl covered; a run without a scope
    /// counts as covering every page of its knowledge bases.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn set_run_scope(&self, run: RunId, scope: &RunScope) -> Result<(), StateError> {
        let json = serde_json::to_string(scope)?;
        self.conn()?.execute("UPDATE runs SET scope = ?2 WHERE id = ?1", params![run.0, json])?;
        Ok(())
    }

    /// Ends a run; only runs with `crawl_complete` count as having missed a
    /// page when pruning.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn finish_run(
        &self,
        run: RunId,
        crawl_complete: bool,
        summary_json: &str,
    ) -> Result<(), StateError> {
        self.conn()?.execute(
            "UPDATE runs SET finished_at = ?2, crawl_complete = ?3, summary = ?4 WHERE id = ?1",
            params![run.0, now(), crawl_complete, summary_json],
        )?;
        Ok(())
    }

    /// Notes that a run covers a knowledge base.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_run_knowledge_base(&self, run: RunId, kb: &str) -> Result<(), StateError> {
        self.conn()?.execute(
            "INSERT OR IGNORE INTO run_knowledge_bases (run_id, knowledge_base) VALUES (?1, ?2)",
            params![run.0, kb],
        )?;
        Ok(())
    }

    /// The stored state of one page.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn page(&self, url: &str) -> Result<Option<PageState>, StateError> {
        let sql = format!("SELECT {PAGE_COLUMNS} FROM pages WHERE url = ?1");
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        Ok(stmt.query_row([url], page_from_row).optional()?)
    }

    /// Records that a run reached `stage` for a page (discovered, fetched,
    /// extracted), creating the row when the page is new.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_stage(&self, url: &Url, stage: Stage, run: RunId) -> Result<(), StateError> {
        let name = crate::naming::document_name(url);
        self.conn()?.execute(
            "INSERT INTO pages (url, document_name, first_seen_run, last_seen_run, stage)
             VALUES (?1, ?2, ?3, ?3, ?4)
             ON CONFLICT (url) DO UPDATE SET last_seen_run = ?3,
                stage = CASE WHEN stage IN ('discovered', 'fetched', 'extracted')
                             THEN ?4 ELSE stage END",
            params![url.as_str(), name, run.0, stage.as_str()],
        )?;
        Ok(())
    }

    /// Records the intent to write a page, before the Dify call.
    ///
    /// The document id stays when the dataset is unchanged: it is the page's
    /// document, to be updated. A page routed to another dataset starts
    /// without one there, and its old document is remembered in
    /// `moved_documents`, to be deleted once the new one exists (see
    /// [`StateStore::moved_documents_of`]).
    ///
    /// # Errors
    /// [`StateError::Query`] or [`StateError::Json`].
    pub fn record_intent(&self, intent: &Intent<'_>) -> Result<(), StateError> {
        let page = intent.page;
        let stored = serde_json::to_string(&StoredPage::from(page))?;
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR IGNORE INTO moved_documents (url, dataset_id, document_id)
             SELECT url, dataset_id, document_id FROM pages
             WHERE url = ?1 AND dataset_id IS NOT NULL AND dataset_id IS NOT ?2
               AND document_id IS NOT NULL",
            params![page.url.as_str(), intent.dataset_id],
        )?;
        tx.execute(
            "INSERT INTO pages (url, knowledge_base, dataset_id, document_name, etag,
                last_modified, sitemap_lastmod, first_seen_run, last_seen_run, stage,
                pending_hash, pending_page, metadata_hash, gone, links)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 'planned', ?9, ?10, ?11, 0, ?12)
             ON CONFLICT (url) DO UPDATE SET
                document_id = CASE WHEN dataset_id IS ?3 THEN document_id ELSE NULL END,
                content_hash = CASE WHEN dataset_id IS ?3 THEN content_hash ELSE NULL END,
                indexing_batch = CASE WHEN dataset_id IS ?3 THEN indexing_batch ELSE NULL END,
                indexing_status = CASE WHEN dataset_id IS ?3 THEN indexing_status ELSE NULL END,
                disabled_by_sync = CASE WHEN dataset_id IS ?3 THEN disabled_by_sync ELSE 0 END,
                knowledge_base = ?2, dataset_id = ?3, document_name = ?4, etag = ?5,
                last_modified = ?6, sitemap_lastmod = ?7, last_seen_run = ?8,
                stage = 'planned', pending_hash = ?9, pending_page = ?10, metadata_hash = ?11,
                gone = 0, links = ?12",
            params![
                page.url.as_str(),
                page.knowledge_base,
                intent.dataset_id,
                intent.document_name,
                page.etag,
                page.last_modified,
                page.sitemap_lastmod,
                intent.run.0,
                page.content_hash,
                stored,
                intent.metadata_hash,
                links_json(&page.links),
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a completed write and queues the page's metadata, in one
    /// transaction: after it, Dify holds `pending_hash` under `document_id`.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_written(
        &self,
        url: &str,
        document_id: &str,
        batch: &str,
        values_json: &str,
    ) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE pages SET document_id = ?2, indexing_batch = ?3, indexing_status = 'waiting',
                content_hash = pending_hash, stage = 'written', failed_stage = NULL,
                last_error = NULL, disabled_by_sync = 0
             WHERE url = ?1",
            params![url, document_id, batch],
        )?;
        gained_document(&tx, url, document_id)?;
        queue_metadata(&tx, url, document_id, values_json)?;
        tx.commit()?;
        Ok(())
    }

    /// Queues a metadata assignment for a page whose content is already in
    /// Dify (descriptive metadata changed, content did not).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_metadata_change(
        &self,
        url: &str,
        metadata_hash: &str,
        values_json: &str,
        run: RunId,
    ) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let document_id: Option<String> = tx
            .query_row("SELECT document_id FROM pages WHERE url = ?1", [url], |row| row.get(0))
            .optional()?
            .flatten();
        if let Some(document_id) = document_id {
            tx.execute(
                "UPDATE pages SET metadata_hash = ?2, last_seen_run = ?3, stage = 'written'
                 WHERE url = ?1",
                params![url, metadata_hash, run.0],
            )?;
            queue_metadata(&tx, url, &document_id, values_json)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` queued metadata assignments of a dataset, oldest first.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn pending_metadata(
        &self,
        dataset_id: &str,
        limit: usize,
    ) -> Result<Vec<PendingMetadata>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT url, document_id, values_json FROM pending_metadata
             WHERE dataset_id = ?1 ORDER BY seq LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![dataset_id, limit], |row| {
            Ok(PendingMetadata {
                url: row.get(0)?,
                document_id: row.get(1)?,
                values_json: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Datasets with queued metadata assignments.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn datasets_with_pending_metadata(&self) -> Result<Vec<String>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached("SELECT DISTINCT dataset_id FROM pending_metadata")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Number of queued metadata assignments of a dataset.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn pending_metadata_count(&self, dataset_id: &str) -> Result<usize, StateError> {
        let count: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM pending_metadata WHERE dataset_id = ?1",
            [dataset_id],
            |row| row.get(0),
        )?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// Marks metadata as applied. Pages advance to `synced`, or to
    /// `metadata_applied` when `await_indexing` (indexing still to confirm);
    /// synced pages drop their pending content.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_metadata_applied(
        &self,
        urls: &[String],
        await_indexing: bool,
    ) -> Result<(), StateError> {
        let next = if await_indexing { Stage::MetadataApplied } else { Stage::Synced };
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        for url in urls {
            tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
            // Indexing may have been confirmed before the metadata went out.
            tx.execute(
                "UPDATE pages SET last_synced_at = ?3,
                    stage = CASE WHEN ?2 = 'metadata_applied' AND indexing_status = 'completed'
                                 THEN 'synced' ELSE ?2 END,
                    pending_page = CASE WHEN ?2 = 'synced' OR indexing_status = 'completed'
                                        THEN NULL ELSE pending_page END
                 WHERE url = ?1 AND stage = 'written'",
                params![url, next.as_str(), now()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records the outcome of indexing a page (`--wait`): `completed` makes
    /// it synced, `error` makes it failed with the given message.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_indexing(
        &self,
        document_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE pages SET indexing_status = ?2 WHERE document_id = ?1",
            params![document_id, status],
        )?;
        match status {
            "completed" => conn.execute(
                "UPDATE pages SET stage = 'synced', pending_page = NULL
                 WHERE document_id = ?1 AND stage = 'metadata_applied'",
                [document_id],
            )?,
            "error" => conn.execute(
                "UPDATE pages SET stage = 'failed', failed_stage = 'indexing', last_error = ?2
                 WHERE document_id = ?1",
                params![document_id, error.unwrap_or("indexing failed")],
            )?,
            _ => 0,
        };
        Ok(())
    }

    /// Records that a page's document vanished from Dify: its queued
    /// metadata is dropped and the next submit or retry creates it again.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_document_lost(
        &self,
        url: &str,
        stage: &str,
        error: &str,
    ) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
        lost_document(&tx, url)?;
        tx.execute(
            "UPDATE pages SET document_id = NULL, content_hash = NULL, stage = 'failed',
                failed_stage = ?2, last_error = ?3, indexing_batch = NULL,
                indexing_status = NULL, disabled_by_sync = 0
             WHERE url = ?1",
            params![url, stage, error],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records that Dify refused a page's metadata for a reason of its own
    /// (not a missing document): the assignment leaves the queue and the
    /// page is failed at stage `metadata`. The metadata fingerprint is
    /// dropped so the next submit or `retry` queues the values again.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_metadata_failed(&self, url: &str, error: &str) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
        tx.execute(
            "UPDATE pages SET stage = 'failed', failed_stage = 'metadata', last_error = ?2,
                metadata_hash = NULL
             WHERE url = ?1",
            params![url, error],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records that a document disabled by pruning was enabled again for its
    /// returning, unchanged page.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_enabled(
        &self,
        url: &str,
        validators: &Validators,
        sitemap_lastmod: Option<&str>,
        run: RunId,
    ) -> Result<(), StateError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE pages SET disabled_by_sync = 0, gone = 0, last_seen_run = ?2,
                stage = CASE WHEN stage = 'failed' THEN 'synced' ELSE stage END,
                failed_stage = NULL, last_error = NULL
             WHERE url = ?1",
            params![url, run.0],
        )?;
        update_fetch(&conn, url, validators, sitemap_lastmod)
    }

    /// Pages whose indexing was never confirmed become synced: for runs that
    /// do not wait for indexing, "metadata applied" is the end of the road.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn promote_unconfirmed(&self) -> Result<usize, StateError> {
        let changed = self.conn()?.execute(
            "UPDATE pages SET stage = 'synced', pending_page = NULL
             WHERE stage = 'metadata_applied'",
            [],
        )?;
        Ok(changed)
    }

    /// Indexing batches of pages whose metadata is applied but whose
    /// indexing is not confirmed yet: (dataset id, batch).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn batches_awaiting_indexing(&self) -> Result<Vec<(String, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT dataset_id, indexing_batch FROM pages
             WHERE stage = 'metadata_applied' AND dataset_id IS NOT NULL
               AND indexing_batch IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pages of an indexing batch not yet synced: (URL, knowledge base).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn pages_in_batch(
        &self,
        dataset_id: &str,
        batch: &str,
    ) -> Result<Vec<(String, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT url, knowledge_base FROM pages
             WHERE dataset_id = ?1 AND indexing_batch = ?2
               AND stage IN ('written', 'metadata_applied')",
        )?;
        let rows = stmt.query_map([dataset_id, batch], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks the pages of a batch Dify no longer knows (a later write of
    /// the same document replaced it) as synced: nothing is left to wait
    /// for under that batch.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_batch_superseded(&self, dataset_id: &str, batch: &str) -> Result<(), StateError> {
        self.conn()?.execute(
            "UPDATE pages SET stage = 'synced', pending_page = NULL
             WHERE dataset_id = ?1 AND indexing_batch = ?2 AND stage = 'metadata_applied'",
            params![dataset_id, batch],
        )?;
        Ok(())
    }

    /// Records a failure of a page at `stage`. The page counts as seen, so a
    /// page failing for a while is not pruned.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_failure(
        &self,
        url: &Url,
        stage: &str,
        error: &str,
        run: RunId,
    ) -> Result<(), StateError> {
        let name = crate::naming::document_name(url);
        self.conn()?.execute(
            "INSERT INTO pages (url, document_name, first_seen_run, last_seen_run, stage,
                failed_stage, last_error)
             VALUES (?1, ?2, ?3, ?3, 'failed', ?4, ?5)
             ON CONFLICT (url) DO UPDATE SET last_seen_run = ?3, stage = 'failed',
                failed_stage = ?4, last_error = ?5",
            params![url.as_str(), name, run.0, stage, error],
        )?;
        Ok(())
    }

    /// Records that the site answered 404 or 410: the page's document may be
    /// pruned whatever the crawl's completeness.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_gone(&self, url: &Url, run: RunId) -> Result<(), StateError> {
        self.conn()?.execute(
            "UPDATE pages SET gone = 1, last_seen_run = ?2 WHERE url = ?1",
            params![url.as_str(), run.0],
        )?;
        Ok(())
    }

    /// Records a page seen without change (304, or equal content hash):
    /// refreshes the last-seen run, and clears a failure left by an earlier
    /// fetch (its content in Dify was never in doubt). `validators` are
    /// those of a fetched page and replace the stored ones, links included
    /// (see [`StateStore::record_fetch`]); a 304 passes `None`, keeping
    /// them, since a 304 tells nothing new about the links.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_unchanged(
        &self,
        url: &str,
        validators: Option<(&Validators, Option<&str>)>,
        run: RunId,
    ) -> Result<(), StateError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE pages SET last_seen_run = ?2, gone = 0,
                stage = CASE WHEN stage != 'failed' THEN stage
                             WHEN EXISTS (SELECT 1 FROM pending_metadata m WHERE m.url = pages.url)
                             THEN 'written' ELSE 'synced' END,
                failed_stage = CASE WHEN stage = 'failed' THEN NULL ELSE failed_stage END,
                last_error = CASE WHEN stage = 'failed' THEN NULL ELSE last_error END
             WHERE url = ?1",
            params![url, run.0],
        )?;
        if let Some((v, lastmod)) = validators {
            update_fetch(&conn, url, v, lastmod)?;
        }
        Ok(())
    }

    /// Records what fetching a page told, for the next run: its validators,
    /// sitemap `lastmod` and links. For fetched pages whose row is not
    /// otherwise rewritten (a metadata-only change).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_fetch(
        &self,
        url: &str,
        validators: &Validators,
        sitemap_lastmod: Option<&str>,
    ) -> Result<(), StateError> {
        update_fetch(&*self.conn()?, url, validators, sitemap_lastmod)
    }

    /// Records that a page is synced without a write: its content hash
    /// equals the `content_hash` metadata of a reconciled document.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_adopted(&self, intent: &Intent<'_>, document_id: &str) -> Result<(), StateError> {
        self.record_intent(intent)?;
        let url = intent.page.url.as_str();
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE pages SET document_id = ?2, content_hash = pending_hash, stage = 'synced',
                pending_page = NULL, last_synced_at = ?3, failed_stage = NULL, last_error = NULL
             WHERE url = ?1",
            params![url, document_id, now()],
        )?;
        gained_document(&tx, url, document_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Validators and links of pages fully synced, for conditional
    /// requests. Pages never synced are left out (a 304 for them would lose
    /// the page), and so are pages whose links are unknown (a 304 for them
    /// would end the crawl there).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn validators_for_synced(&self) -> Result<HashMap<String, Validators>, StateError> {
        self.validators_for_synced_if(|_, _| true)
    }

    /// [`StateStore::validators_for_synced`], keeping only the pages for
    /// which `keep(url, knowledge_base)` holds (the pipeline drops pages
    /// whose route changed, so they are fetched in full and moved).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn validators_for_synced_if(
        &self,
        mut keep: impl FnMut(&str, &str) -> bool,
    ) -> Result<HashMap<String, Validators>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT url, knowledge_base, etag, last_modified, links FROM pages
             WHERE stage = 'synced' AND links IS NOT NULL
               AND (etag IS NOT NULL OR last_modified IS NOT NULL)",
        )?;
        let mut rows = stmt.query([])?;
        let mut kept = HashMap::new();
        while let Some(row) = rows.next()? {
            let url: String = row.get(0)?;
            let knowledge_base: String = row.get(1)?;
            if !keep(&url, &knowledge_base) {
                continue;
            }
            if let Some(links) = links_from_json(row.get(4)?) {
                let (etag, last_modified) = (row.get(2)?, row.get(3)?);
                kept.insert(url, Validators { etag, last_modified, links });
            }
        }
        Ok(kept)
    }

    /// Page counts per knowledge base and stage.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn status_counts(&self) -> Result<BTreeMap<String, BTreeMap<Stage, u64>>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT knowledge_base, stage, COUNT(*) FROM pages GROUP BY knowledge_base, stage",
        )?;
        let mut counts: BTreeMap<String, BTreeMap<Stage, u64>> = BTreeMap::new();
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?))
        })?;
        for row in rows {
            let (kb, stage, count) = row?;
            let stage = Stage::parse(&stage).unwrap_or(Stage::Failed);
            *counts.entry(kb).or_default().entry(stage).or_default() +=
                u64::try_from(count).unwrap_or(0);
        }
        Ok(counts)
    }

    /// Pages whose last attempt failed, with their errors.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn failed_pages(&self) -> Result<Vec<FailedPage>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT url, knowledge_base, COALESCE(failed_stage, ''), COALESCE(last_error, '')
             FROM pages WHERE stage = 'failed' ORDER BY url",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(FailedPage {
                url: row.get(0)?,
                knowledge_base: row.get(1)?,
                stage: row.get(2)?,
                error: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pages with content not yet fully synced (planned, written, failed
    /// writes), for `retry`.
    ///
    /// # Errors
    /// [`StateError::Query`] or [`StateError::Json`].
    pub fn pending_pages(&self) -> Result<Vec<PendingPage>, StateError> {
        let sql = format!(
            "SELECT {PAGE_COLUMNS}, pending_page FROM pages
             WHERE pending_page IS NOT NULL AND stage IN ('planned', 'failed') ORDER BY url"
        );
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows =
            stmt.query_map([], |row| Ok((page_from_row(row)?, row.get::<_, String>(22)?)))?;
        let mut pages = Vec::new();
        for row in rows {
            let (state, json) = row?;
            let stored: StoredPage = serde_json::from_str(&json)?;
            if let Some(page) = stored.into_page() {
                pages.push(PendingPage { state, page });
            }
        }
        Ok(pages)
    }

    /// Documents of a knowledge base that may be pruned in `run`: pages the
    /// site answered 404/410 for, and, when `missed_runs` is set, pages not
    /// seen by that many complete runs covering the knowledge base whose
    /// scope (see [`RunScope`]) contains the page.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn prune_candidates(
        &self,
        kb: &str,
        run: RunId,
        missed_runs: Option<u32>,
    ) -> Result<Vec<PruneCandidate>, StateError> {
        self.plan_prune(kb, run, missed_runs, None)
    }

    /// [`StateStore::prune_candidates`] for a run that recorded nothing (a
    /// dry run): `unrecorded` says what it saw instead.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn plan_prune(
        &self,
        kb: &str,
        run: RunId,
        missed_runs: Option<u32>,
        unrecorded: Option<&Unrecorded<'_>>,
    ) -> Result<Vec<PruneCandidate>, StateError> {
        struct Row {
            candidate: PruneCandidate,
            gone: bool,
            last_seen: i64,
        }
        let conn = self.conn()?;
        let rows: Vec<Row> = {
            let mut stmt = conn.prepare_cached(
                "SELECT url, knowledge_base, dataset_id, document_id, document_name, gone,
                    last_seen_run
                 FROM pages WHERE knowledge_base = ?1 AND disabled_by_sync = 0 ORDER BY url",
            )?;
            let rows = stmt.query_map([kb], |row| {
                Ok(Row {
                    candidate: PruneCandidate {
                        url: row.get(0)?,
                        knowledge_base: row.get(1)?,
                        dataset_id: row.get(2)?,
                        document_id: row.get(3)?,
                        document_name: row.get(4)?,
                        reason: PruneReason::Gone,
                    },
                    gone: row.get(5)?,
                    last_seen: row.get(6)?,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let oldest = rows.iter().map(|r| r.last_seen).min().unwrap_or(run.0);
        let mut runs: Vec<(i64, Option<RunScope>)> = {
            let mut stmt = conn.prepare_cached(
                "SELECT r.id, r.scope FROM runs r JOIN run_knowledge_bases k ON k.run_id = r.id
                 WHERE k.knowledge_base = ?1 AND r.id > ?3
                   AND (r.crawl_complete = 1 OR r.id = ?2)",
            )?;
            let rows = stmt.query_map(params![kb, run.0, oldest], |row| {
                let scope: Option<String> = row.get(1)?;
                // An unreadable scope counts as none: the old behaviour.
                Ok((row.get(0)?, scope.and_then(|text| serde_json::from_str(&text).ok())))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        drop(conn);
        if let Some(view) = unrecorded.filter(|view| view.covers_kb) {
            runs.push((run.0, view.scope.cloned()));
        }

        let mut candidates = Vec::new();
        for Row { mut candidate, gone, last_seen } in rows {
            let url = candidate.url.as_str();
            let (gone, last_seen) = match unrecorded {
                Some(view) if view.gone.contains(url) => (true, run.0),
                Some(view) if view.seen.contains(url) => (false, run.0),
                _ => (gone, last_seen),
            };
            if !gone {
                let in_scope =
                    |scope: &Option<RunScope>| scope.as_ref().is_none_or(|s| s.contains(url));
                let missed = runs.iter().filter(|(id, scope)| *id > last_seen && in_scope(scope));
                let missed = u32::try_from(missed.count()).unwrap_or(u32::MAX);
                match missed_runs {
                    Some(limit) if missed >= limit && missed > 0 => {
                        candidate.reason = PruneReason::Missed { runs: missed };
                    }
                    _ => continue,
                }
            }
            candidates.push(candidate);
        }
        Ok(candidates)
    }

    /// Documents this tool keeps in a knowledge base (and has not disabled),
    /// the base of pruning's safety share.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn document_count(&self, kb: &str) -> Result<u64, StateError> {
        let count: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM pages
             WHERE knowledge_base = ?1 AND document_id IS NOT NULL AND disabled_by_sync = 0",
            [kb],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Records that pruning disabled a page's document.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn record_disabled_by_sync(&self, url: &str) -> Result<(), StateError> {
        self.conn()?.execute("UPDATE pages SET disabled_by_sync = 1 WHERE url = ?1", [url])?;
        Ok(())
    }

    /// Knowledge bases holding pages the site answered 404 or 410 for.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn knowledge_bases_with_gone_pages(&self) -> Result<Vec<String>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT knowledge_base FROM pages WHERE gone = 1 AND knowledge_base != ''",
        )?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The knowledge base name of a dataset id.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn knowledge_base_of(&self, dataset_id: &str) -> Result<Option<String>, StateError> {
        let conn = self.conn()?;
        let name = conn
            .query_row("SELECT name FROM datasets WHERE dataset_id = ?1", [dataset_id], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(name)
    }

    /// The page (URL, knowledge base) of a document id.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn page_of_document(
        &self,
        document_id: &str,
    ) -> Result<Option<(String, String)>, StateError> {
        let conn = self.conn()?;
        let page = conn
            .query_row(
                "SELECT url, knowledge_base FROM pages WHERE document_id = ?1",
                [document_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(page)
    }

    /// Forgets a page after its document was pruned.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn forget(&self, url: &str) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
        lost_document(&tx, url)?;
        tx.execute("DELETE FROM pages WHERE url = ?1", [url])?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets a page's document after it was deleted (routing moved the page
    /// to another knowledge base), keeping the page row.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn clear_document(&self, url: &str) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
        lost_document(&tx, url)?;
        tx.execute(
            "UPDATE pages SET document_id = NULL, content_hash = NULL, dataset_id = NULL
             WHERE url = ?1",
            [url],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// A known dataset by knowledge base name.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>, StateError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT dataset_id, indexing_technique, doc_form FROM datasets WHERE name = ?1",
                [name],
                |row| {
                    Ok(DatasetRecord {
                        dataset_id: row.get(0)?,
                        indexing_technique: row.get(1)?,
                        doc_form: row.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Remembers a dataset. A new dataset id for the name drops the
    /// reconciled marker.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn save_dataset(&self, name: &str, record: &DatasetRecord) -> Result<(), StateError> {
        self.conn()?.execute(
            "INSERT INTO datasets (name, dataset_id, indexing_technique, doc_form)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET dataset_id = ?2, indexing_technique = ?3,
                doc_form = ?4,
                reconciled = CASE WHEN dataset_id = ?2 THEN reconciled ELSE 0 END",
            params![name, record.dataset_id, record.indexing_technique, record.doc_form],
        )?;
        Ok(())
    }

    /// Whether the store holds a complete listing of this dataset (or the
    /// sink created it empty), so its documents are known.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn is_reconciled(&self, dataset_id: &str) -> Result<bool, StateError> {
        let found: Option<bool> = self
            .conn()?
            .query_row(
                "SELECT reconciled FROM datasets WHERE dataset_id = ?1",
                [dataset_id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.unwrap_or(false))
    }

    /// Marks a dataset as reconciled: set only after a complete listing, or
    /// for a dataset created empty.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn mark_reconciled(&self, dataset_id: &str) -> Result<(), StateError> {
        self.conn()?
            .execute("UPDATE datasets SET reconciled = 1 WHERE dataset_id = ?1", [dataset_id])?;
        Ok(())
    }

    /// Known metadata fields of a dataset: name -> (field id, type).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn metadata_fields(
        &self,
        dataset_id: &str,
    ) -> Result<HashMap<String, (String, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT name, field_id, field_type FROM metadata_fields WHERE dataset_id = ?1",
        )?;
        let rows =
            stmt.query_map([dataset_id], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a dataset that no longer exists in Dify, and every document
    /// id in it, so the next run creates the knowledge base and its pages
    /// again.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn forget_dataset(&self, name: &str) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let dataset_id: Option<String> = tx
            .query_row("SELECT dataset_id FROM datasets WHERE name = ?1", [name], |row| row.get(0))
            .optional()?;
        if let Some(dataset_id) = dataset_id {
            tx.execute("DELETE FROM metadata_fields WHERE dataset_id = ?1", [&dataset_id])?;
            tx.execute("DELETE FROM pending_metadata WHERE dataset_id = ?1", [&dataset_id])?;
            tx.execute("DELETE FROM remote_documents WHERE dataset_id = ?1", [&dataset_id])?;
            tx.execute("DELETE FROM moved_documents WHERE dataset_id = ?1", [&dataset_id])?;
            tx.execute(
                "UPDATE pages SET dataset_id = NULL, document_id = NULL, content_hash = NULL,
                    stage = CASE WHEN stage IN ('written', 'metadata_applied', 'synced')
                                 THEN 'planned' ELSE stage END
                 WHERE dataset_id = ?1",
                [&dataset_id],
            )?;
        }
        tx.execute("DELETE FROM datasets WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    /// Remembers a metadata field of a dataset.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn save_metadata_field(
        &self,
        dataset_id: &str,
        name: &str,
        field_id: &str,
        field_type: &str,
    ) -> Result<(), StateError> {
        self.conn()?.execute(
            "INSERT OR REPLACE INTO metadata_fields (dataset_id, name, field_id, field_type)
             VALUES (?1, ?2, ?3, ?4)",
            params![dataset_id, name, field_id, field_type],
        )?;
        Ok(())
    }

    /// Remembers a document found in Dify by reconciliation; `doc.listed_run`
    /// says which run listed it.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn save_remote_document(
        &self,
        dataset_id: &str,
        name: &str,
        doc: &RemoteDocument,
    ) -> Result<(), StateError> {
        self.conn()?.execute(
            "INSERT OR REPLACE INTO remote_documents
                (dataset_id, name, document_id, content_hash, metadata_hash, display_status,
                 listed_run)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                dataset_id,
                name,
                doc.document_id,
                doc.content_hash,
                doc.metadata_hash,
                doc.display_status,
                doc.listed_run.map(|run| run.0)
            ],
        )?;
        Ok(())
    }

    /// A reconciled document by dataset and name.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn remote_document(
        &self,
        dataset_id: &str,
        name: &str,
    ) -> Result<Option<RemoteDocument>, StateError> {
        let conn = self.conn()?;
        let row = conn
            .query_row(
                "SELECT document_id, content_hash, metadata_hash, display_status, listed_run
                 FROM remote_documents WHERE dataset_id = ?1 AND name = ?2",
                params![dataset_id, name],
                |row| {
                    Ok(RemoteDocument {
                        document_id: row.get(0)?,
                        content_hash: row.get(1)?,
                        metadata_hash: row.get(2)?,
                        display_status: row.get(3)?,
                        listed_run: row.get::<_, Option<i64>>(4)?.map(RunId),
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    /// Forgets a reconciled document (found deleted in Dify).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn forget_remote_document(&self, dataset_id: &str, name: &str) -> Result<(), StateError> {
        self.conn()?.execute(
            "DELETE FROM remote_documents WHERE dataset_id = ?1 AND name = ?2",
            params![dataset_id, name],
        )?;
        Ok(())
    }

    /// Seeds a page row from a reconciled document whose `source_url`
    /// metadata names it, so later runs can prune it.
    ///
    /// Without `overwrite` (reconciliation of a dataset the store never
    /// listed) existing rows win, except that a row without a document in
    /// this dataset takes the listed one. With `overwrite` (an explicit
    /// reconcile) the listing is the truth: document id and hashes are
    /// replaced, and a row whose document or hash changed loses its HTTP
    /// validators so the next crawl fetches and compares the page in full.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn seed_reconciled_page(
        &self,
        url: &Url,
        seed: &ReconciledPage<'_>,
        overwrite: bool,
    ) -> Result<bool, StateError> {
        let name = crate::naming::document_name(url);
        let doc = seed.document;
        let update = if overwrite {
            "ON CONFLICT (url) DO UPDATE SET
                etag = CASE WHEN document_id IS ?5 AND content_hash IS ?6 THEN etag ELSE NULL END,
                last_modified = CASE WHEN document_id IS ?5 AND content_hash IS ?6
                                     THEN last_modified ELSE NULL END,
                knowledge_base = ?2, dataset_id = ?3, document_name = ?4, document_id = ?5,
                content_hash = ?6, metadata_hash = ?7,
                disabled_by_sync = CASE WHEN ?10 = 'disabled' THEN disabled_by_sync ELSE 0 END
             WHERE dataset_id IS ?3 OR dataset_id IS NULL OR document_id IS NULL"
        } else {
            "ON CONFLICT (url) DO UPDATE SET
                knowledge_base = ?2, dataset_id = ?3, document_id = ?5, content_hash = ?6,
                metadata_hash = ?7
             WHERE document_id IS NULL AND (dataset_id IS NULL OR dataset_id = ?3)"
        };
        let sql = format!(
            "INSERT INTO pages (url, knowledge_base, dataset_id, document_name,
                document_id, content_hash, metadata_hash, first_seen_run, last_seen_run, stage,
                last_synced_at, disabled_by_sync)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 'synced', ?9, 0) {update}"
        );
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let values = params![
            url.as_str(),
            seed.knowledge_base,
            seed.dataset_id,
            name,
            doc.document_id,
            doc.content_hash,
            doc.metadata_hash,
            seed.run.0,
            now(),
            doc.display_status,
        ];
        // Only the overwrite statement reads the display status (?10).
        let used = if overwrite { values.len() } else { values.len() - 1 };
        let changed = tx.execute(&sql, values.get(..used).unwrap_or(values))?;
        // Queued metadata aimed at another document of this page is void.
        tx.execute(
            "DELETE FROM pending_metadata WHERE url = ?1 AND document_id IS NOT ?2
               AND EXISTS (SELECT 1 FROM pages p WHERE p.url = ?1 AND p.document_id = ?2)",
            params![url.as_str(), doc.document_id],
        )?;
        tx.commit()?;
        Ok(changed > 0)
    }

    /// After a complete listing of a dataset: forgets reconciled rows the
    /// listing did not find again (they were listed by an earlier run), and
    /// documents of moved pages that no longer exist.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn drop_unlisted_remote(&self, dataset_id: &str, run: RunId) -> Result<(), StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM moved_documents WHERE dataset_id = ?1 AND document_id NOT IN
                (SELECT document_id FROM remote_documents
                 WHERE dataset_id = ?1 AND listed_run = ?2)",
            params![dataset_id, run.0],
        )?;
        tx.execute(
            "DELETE FROM remote_documents WHERE dataset_id = ?1 AND listed_run IS NOT ?2",
            params![dataset_id, run.0],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// After a complete listing with explicit reconciliation: rows of this
    /// dataset whose document was not listed lose their document id, hash
    /// and validators, so the next crawl creates the page again. Returns how
    /// many rows changed.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn clear_unlisted_pages(
        &self,
        dataset_id: &str,
        listed: &HashSet<String>,
    ) -> Result<usize, StateError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let stale: Vec<String> = {
            let mut stmt = tx.prepare(
                "SELECT url, document_id FROM pages
                 WHERE dataset_id = ?1 AND document_id IS NOT NULL",
            )?;
            let rows = stmt.query_map([dataset_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let mut stale = Vec::new();
            for row in rows {
                let (url, document_id) = row?;
                if !listed.contains(&document_id) {
                    stale.push(url);
                }
            }
            stale
        };
        for url in &stale {
            tx.execute("DELETE FROM pending_metadata WHERE url = ?1", [url])?;
            tx.execute(
                "UPDATE pages SET document_id = NULL, content_hash = NULL, etag = NULL,
                    last_modified = NULL, indexing_batch = NULL, indexing_status = NULL,
                    disabled_by_sync = 0,
                    stage = CASE WHEN stage IN ('written', 'metadata_applied', 'synced')
                                 THEN 'planned' ELSE stage END
                 WHERE url = ?1",
                [url],
            )?;
        }
        tx.commit()?;
        Ok(stale.len())
    }

    /// Documents a page left behind in its old dataset when routing moved
    /// it: (dataset id, document id).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn moved_documents_of(&self, url: &str) -> Result<Vec<(String, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT dataset_id, document_id FROM moved_documents WHERE url = ?1")?;
        let rows = stmt.query_map([url], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Left-behind documents that may go now: their page has its document
    /// in the new dataset, or the page is forgotten. (URL, dataset id,
    /// document id).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn moved_documents_ready(&self) -> Result<Vec<(String, String, String)>, StateError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT m.url, m.dataset_id, m.document_id FROM moved_documents m
             LEFT JOIN pages p ON p.url = m.url
             WHERE p.url IS NULL
                OR (p.document_id IS NOT NULL AND p.dataset_id IS NOT m.dataset_id)",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a left-behind document once it is deleted.
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn drop_moved_document(
        &self,
        dataset_id: &str,
        document_id: &str,
    ) -> Result<(), StateError> {
        self.conn()?.execute(
            "DELETE FROM moved_documents WHERE dataset_id = ?1 AND document_id = ?2",
            params![dataset_id, document_id],
        )?;
        Ok(())
    }

    /// Every page row, ordered by URL (for `status` and for checks).
    ///
    /// # Errors
    /// [`StateError::Query`] on SQLite failure.
    pub fn all_pages(&self) -> Result<Vec<PageState>, StateError> {
        let sql = format!("SELECT {PAGE_COLUMNS} FROM pages ORDER BY url");
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], page_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn update_fetch(
    conn: &Connection,
    url: &str,
    validators: &Validators,
    sitemap_lastmod: Option<&str>,
) -> Result<(), StateError> {
    conn.execute(
        "UPDATE pages SET etag = ?2, last_modified = ?3, sitemap_lastmod = ?4, links = ?5
         WHERE url = ?1",
        params![
            url,
            validators.etag,
            validators.last_modified,
            sitemap_lastmod,
            links_json(&validators.links)
        ],
    )?;
    Ok(())
}

/// The page's row now holds its document: a reconciled row for the same
/// name is no longer needed (and must not outlive the document), and an
/// entry left by an earlier move that names this very document is void.
fn gained_document(
    tx: &rusqlite::Transaction<'_>,
    url: &str,
    document_id: &str,
) -> Result<(), StateError> {
    lost_document(tx, url)?;
    tx.execute(
        "DELETE FROM moved_documents WHERE url = ?1 AND document_id = ?2",
        params![url, document_id],
    )?;
    Ok(())
}

/// The page's row gives up (or no longer trusts) its document: the
/// reconciled row for its name goes too, so it cannot be adopted later.
fn lost_document(tx: &rusqlite::Transaction<'_>, url: &str) -> Result<(), StateError> {
    tx.execute(
        "DELETE FROM remote_documents
         WHERE (dataset_id, name) IN
            (SELECT dataset_id, document_name FROM pages WHERE url = ?1)",
        [url],
    )?;
    Ok(())
}

fn queue_metadata(
    tx: &rusqlite::Transaction<'_>,
    url: &str,
    document_id: &str,
    values_json: &str,
) -> Result<(), StateError> {
    tx.execute(
        "INSERT OR REPLACE INTO pending_metadata (url, dataset_id, document_id, values_json, seq)
         SELECT url, dataset_id, ?2, ?3,
                (SELECT COALESCE(MAX(seq), 0) + 1 FROM pending_metadata)
         FROM pages WHERE url = ?1 AND dataset_id IS NOT NULL",
        params![url, document_id, values_json],
    )?;
    Ok(())
}

/// A read-write connection with WAL and the schema up to date.
fn open_writable(path: &Path) -> Result<Connection, StateError> {
    let open_error = |source| StateError::Open { path: path.to_path_buf(), source };
    let mut conn = Connection::open(path).map_err(open_error)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(open_error)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(open_error)?;
    migrate(&mut conn).map_err(|err| query_to_open(err, path))?;
    Ok(conn)
}

fn query_to_open(err: StateError, path: &Path) -> StateError {
    match err {
        StateError::Query(source) => StateError::Open { path: path.to_path_buf(), source },
        other => other,
    }
}

fn schema_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

fn migrate(conn: &mut Connection) -> Result<(), StateError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let supported = schema_version();
    if found == supported {
        return Ok(());
    }
    if found > supported {
        return Err(StateError::SchemaTooNew { found, supported });
    }

    let tx = conn.transaction()?;
    for (version, step) in (1_i64..).zip(MIGRATIONS).skip(usize::try_from(found).unwrap_or(0)) {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version)?;
        tracing::debug!(version, "migrated state store");
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(url: &str, markdown: &str) -> PageRecord {
        PageRecord {
            url: Url::parse(url).unwrap(),
            knowledge_base: "docs".into(),
            title: Some("Title".into()),
            description: None,
            language: Some("en".into()),
            published: None,
            modified: None,
            markdown: markdown.into(),
            content_hash: PageRecord::hash_content(markdown),
            word_count: 2,
            etag: Some("\"v1\"".into()),
            last_modified: None,
            sitemap_lastmod: None,
            crawled_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            links: vec!["https://a.example/next".into()],
        }
    }

    fn store() -> (tempfile::TempDir, StateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path().join(DEFAULT_STATE_PATH)).unwrap();
        (dir, store)
    }

    fn intent<'a>(page: &'a PageRecord, run: RunId) -> Intent<'a> {
        Intent { page, dataset_id: "ds1", document_name: "name", metadata_hash: "m", run }
    }

    #[test]
    fn open_creates_then_reopens_with_the_same_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        assert!(StateStore::open(&path).unwrap().was_created());

        let again = StateStore::open(&path).unwrap();
        assert!(!again.was_created());
        let version: i64 =
            again.conn().unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(StateStore::open(&path), Err(StateError::SchemaTooNew { found: 99, .. })));
    }

    #[test]
    fn a_page_moves_from_intent_to_synced() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "hello world");

        store.record_intent(&intent(&page, run)).unwrap();
        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!(
            (state.stage, state.document_id, state.content_hash),
            (Stage::Planned, None, None)
        );
        assert_eq!(store.pending_pages().unwrap().len(), 1);

        store.record_written(page.url.as_str(), "doc1", "b1", "{}").unwrap();
        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!(state.stage, Stage::Written);
        assert_eq!(state.content_hash.as_deref(), Some(page.content_hash.as_str()));
        let pending = store.pending_metadata("ds1", 10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].document_id, "doc1");
        assert!(store.validators_for_synced().unwrap().is_empty());

        store.record_metadata_applied(&[page.url.to_string()], false).unwrap();
        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!(state.stage, Stage::Synced);
        assert!(store.pending_metadata("ds1", 10).unwrap().is_empty());
        assert!(store.pending_pages().unwrap().is_empty());
        let validators = store.validators_for_synced().unwrap();
        assert_eq!(validators[page.url.as_str()].etag.as_deref(), Some("\"v1\""));
    }

    fn synced(store: &StateStore, page: &PageRecord, run: RunId) {
        store.record_intent(&intent(page, run)).unwrap();
        store.record_written(page.url.as_str(), "doc1", "b1", "{}").unwrap();
        store.record_metadata_applied(&[page.url.to_string()], false).unwrap();
    }

    #[test]
    fn links_are_kept_by_a_304_and_replaced_by_a_fetch() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "text");
        synced(&store, &page, run);
        let url = page.url.as_str();
        assert_eq!(store.validators_for_synced().unwrap()[url].links, page.links);

        store.record_unchanged(url, None, run).unwrap();
        assert_eq!(store.page(url).unwrap().unwrap().validators.links, page.links);

        let fetched = Validators {
            etag: Some("\"v2\"".into()),
            last_modified: None,
            links: vec!["https://a.example/y".into()],
        };
        store.record_unchanged(url, Some((&fetched, None)), run).unwrap();
        assert_eq!(store.validators_for_synced().unwrap()[url], fetched);

        let none = Validators { links: Vec::new(), ..fetched };
        store.record_fetch(url, &none, Some("2026-12-01")).unwrap();
        let state = store.page(url).unwrap().unwrap();
        assert_eq!(state.validators, none, "an empty list is known, not unknown");
        assert_eq!(state.sitemap_lastmod.as_deref(), Some("2026-12-01"));
        assert!(store.validators_for_synced().unwrap().contains_key(url));
    }

    #[test]
    fn a_version_1_file_is_migrated_and_its_pages_fetched_in_full_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO pages (url, document_name, document_id, etag, first_seen_run,
                    last_seen_run, stage) VALUES ('https://a.example/x', 'n', 'd', '\"v1\"', 1, 1,
                    'synced')",
                [],
            )
            .unwrap();
        }

        let store = StateStore::open(&path).unwrap();
        let state = store.page("https://a.example/x").unwrap().unwrap();
        assert_eq!(
            (state.stage, state.validators.etag.as_deref()),
            (Stage::Synced, Some("\"v1\""))
        );
        assert!(
            store.validators_for_synced().unwrap().is_empty(),
            "links unknown: no conditional request"
        );

        let run = store.begin_run().unwrap();
        let fetched = Validators { etag: Some("\"v1\"".into()), ..Validators::default() };
        store.record_unchanged("https://a.example/x", Some((&fetched, None)), run).unwrap();
        assert_eq!(store.validators_for_synced().unwrap().len(), 1);
    }

    #[test]
    fn a_new_intent_keeps_the_document_of_the_same_dataset_only() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let first = page("https://a.example/x", "one");
        store.record_intent(&intent(&first, run)).unwrap();
        store.record_written(first.url.as_str(), "doc1", "b1", "{}").unwrap();

        let second = page("https://a.example/x", "two");
        store.record_intent(&intent(&second, run)).unwrap();
        let state = store.page(first.url.as_str()).unwrap().unwrap();
        assert_eq!(state.document_id.as_deref(), Some("doc1"));
        assert_eq!(state.content_hash.as_deref(), Some(first.content_hash.as_str()));
        assert_eq!(state.pending_hash.as_deref(), Some(second.content_hash.as_str()));

        let moved = Intent { dataset_id: "ds2", ..intent(&second, run) };
        store.record_intent(&moved).unwrap();
        let state = store.page(first.url.as_str()).unwrap().unwrap();
        assert_eq!(state.document_id, None);
    }

    #[test]
    fn pending_pages_round_trip_the_page() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "some text");
        store.record_intent(&intent(&page, run)).unwrap();
        let pending = store.pending_pages().unwrap();
        assert_eq!(pending[0].page, page);
    }

    #[test]
    fn an_unchanged_page_recovers_from_a_fetch_failure() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "text");
        store.record_intent(&intent(&page, run)).unwrap();
        store.record_written(page.url.as_str(), "doc1", "b1", "{}").unwrap();
        store.record_metadata_applied(&[page.url.to_string()], false).unwrap();

        store.record_failure(&page.url, "fetch", "timed out", run).unwrap();
        assert!(store.validators_for_synced().unwrap().is_empty());
        store.record_unchanged(page.url.as_str(), None, run).unwrap();

        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!((state.stage, state.last_error), (Stage::Synced, None));
        assert_eq!(state.content_hash.as_deref(), Some(page.content_hash.as_str()));
    }

    #[test]
    fn forgetting_a_dataset_leaves_its_pages_to_be_created_again() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let record =
            DatasetRecord { dataset_id: "ds1".into(), indexing_technique: None, doc_form: None };
        store.save_dataset("docs", &record).unwrap();
        let page = page("https://a.example/x", "text");
        store.record_intent(&intent(&page, run)).unwrap();
        store.record_written(page.url.as_str(), "doc1", "b1", "{}").unwrap();

        store.forget_dataset("docs").unwrap();

        assert!(store.dataset("docs").unwrap().is_none());
        assert!(store.pending_metadata("ds1", 10).unwrap().is_empty());
        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!(
            (state.dataset_id, state.document_id, state.stage),
            (None, None, Stage::Planned)
        );
    }

    #[test]
    fn failures_are_listed_with_their_stage() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let url = Url::parse("https://a.example/broken").unwrap();
        store.record_failure(&url, "fetch", "500 from server", run).unwrap();
        let failed = store.failed_pages().unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(
            (failed[0].stage.as_str(), failed[0].error.as_str()),
            ("fetch", "500 from server")
        );
        let counts = store.status_counts().unwrap();
        assert_eq!(counts[""][&Stage::Failed], 1);
    }

    #[test]
    fn lost_documents_leave_the_metadata_queue() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "text");
        store.record_intent(&intent(&page, run)).unwrap();
        store.record_written(page.url.as_str(), "doc1", "b1", "{}").unwrap();
        store.record_document_lost(page.url.as_str(), "metadata", "document not found").unwrap();
        assert!(store.pending_metadata("ds1", 10).unwrap().is_empty());
        let state = store.page(page.url.as_str()).unwrap().unwrap();
        assert_eq!((state.stage, state.document_id), (Stage::Failed, None));
        assert_eq!(store.pending_pages().unwrap().len(), 1);
    }

    #[test]
    fn prune_counts_only_complete_runs_of_the_same_knowledge_base() {
        let (_dir, store) = store();
        let first = store.begin_run().unwrap();
        store.record_run_knowledge_base(first, "docs").unwrap();
        let kept = page("https://a.example/kept", "a");
        let dropped = page("https://a.example/dropped", "b");
        for p in [&kept, &dropped] {
            store.record_intent(&intent(p, first)).unwrap();
            store.record_written(p.url.as_str(), p.url.path(), "b", "{}").unwrap();
        }
        store.finish_run(first, true, "{}").unwrap();

        let incomplete = store.begin_run().unwrap();
        store.record_run_knowledge_base(incomplete, "docs").unwrap();
        store.finish_run(incomplete, false, "{}").unwrap();
        let other_kb = store.begin_run().unwrap();
        store.record_run_knowledge_base(other_kb, "blog").unwrap();
        store.finish_run(other_kb, true, "{}").unwrap();

        let current = store.begin_run().unwrap();
        store.record_run_knowledge_base(current, "docs").unwrap();
        store.record_unchanged(kept.url.as_str(), None, current).unwrap();
        let candidates = store.prune_candidates("docs", current, Some(1)).unwrap();
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].url, dropped.url.as_str());
        assert_eq!(candidates[0].reason, PruneReason::Missed { runs: 1 });
        assert!(store.prune_candidates("docs", current, Some(2)).unwrap().is_empty());
        assert!(store.prune_candidates("docs", current, None).unwrap().is_empty());

        store.record_gone(&kept.url, current).unwrap();
        let gone = store.prune_candidates("docs", current, None).unwrap();
        assert_eq!(gone[0].reason, PruneReason::Gone);
        store.forget(&gone[0].url).unwrap();
        assert!(store.page(kept.url.as_str()).unwrap().is_none());
    }

    #[test]
    fn datasets_fields_and_remote_documents_are_remembered() {
        let (_dir, store) = store();
        let record = DatasetRecord {
            dataset_id: "ds1".into(),
            indexing_technique: Some("economy".into()),
            doc_form: None,
        };
        store.save_dataset("docs", &record).unwrap();
        assert_eq!(store.dataset("docs").unwrap(), Some(record));
        store.save_metadata_field("ds1", "title", "f1", "string").unwrap();
        assert_eq!(store.metadata_fields("ds1").unwrap()["title"], ("f1".into(), "string".into()));

        let doc = RemoteDocument {
            document_id: "d1".into(),
            content_hash: Some("h".into()),
            metadata_hash: Some("m".into()),
            display_status: Some("available".into()),
            listed_run: Some(RunId(3)),
        };
        store.save_remote_document("ds1", "a.example/x", &doc).unwrap();
        assert_eq!(store.remote_document("ds1", "a.example/x").unwrap(), Some(doc));
    }

    #[test]
    fn a_second_open_of_a_store_in_use_fails_at_once_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let first = StateStore::open(&path).unwrap();
        let clone = first.clone();

        let error = StateStore::open(&path).unwrap_err();
        assert!(matches!(error, StateError::Locked { .. }), "{error:?}");
        assert!(error.to_string().contains("another dify-crawl run is using"), "{error}");
        drop(first);
        assert!(StateStore::open(&path).is_err(), "a clone still holds the lock");
        drop(clone);
        StateStore::open(&path).unwrap();
    }

    #[test]
    fn a_read_only_open_works_while_a_run_holds_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let running = StateStore::open(&path).unwrap();
        let run = running.begin_run().unwrap();

        let reader = StateStore::open_read_only(&path).unwrap();
        assert_eq!(reader.next_run_id().unwrap(), RunId(run.0 + 1));
        assert!(reader.status_counts().unwrap().is_empty());
    }

    #[test]
    fn a_dry_run_open_creates_nothing_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite3");
        let memory = StateStore::open_read_only(&path).unwrap();
        assert_eq!(memory.next_run_id().unwrap(), RunId(1));
        assert!(memory.page("https://a.example/x").unwrap().is_none());
        assert!(!path.exists());

        let store = StateStore::open(&path).unwrap();
        let run = store.begin_run().unwrap();
        store.record_intent(&intent(&page("https://a.example/x", "text"), run)).unwrap();
        drop(store);
        let read_only = StateStore::open_read_only(&path).unwrap();
        assert!(read_only.is_read_only());
        assert_eq!(read_only.page("https://a.example/x").unwrap().unwrap().stage, Stage::Planned);
        assert!(read_only.begin_run().is_err(), "writes are refused");
        let _running = StateStore::open(&path).unwrap();
        StateStore::open_read_only(&path).unwrap();
    }

    fn remote(id: &str, run: i64) -> RemoteDocument {
        RemoteDocument {
            document_id: id.into(),
            content_hash: Some("h".into()),
            metadata_hash: Some("m".into()),
            display_status: Some("available".into()),
            listed_run: Some(RunId(run)),
        }
    }

    #[test]
    fn a_reconciled_document_is_forgotten_when_its_page_gains_or_loses_one() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "text");
        store.save_remote_document("ds1", "name", &remote("d1", run.0)).unwrap();
        store.record_intent(&intent(&page, run)).unwrap();
        store.record_written(page.url.as_str(), "d1", "b1", "{}").unwrap();
        assert!(store.remote_document("ds1", "name").unwrap().is_none(), "gained");

        store.save_remote_document("ds1", "name", &remote("d1", run.0)).unwrap();
        store.forget(page.url.as_str()).unwrap();
        assert!(store.remote_document("ds1", "name").unwrap().is_none(), "forgotten");

        store.record_intent(&intent(&page, run)).unwrap();
        store.save_remote_document("ds1", "name", &remote("d1", run.0)).unwrap();
        store.record_document_lost(page.url.as_str(), "metadata", "gone").unwrap();
        assert!(store.remote_document("ds1", "name").unwrap().is_none(), "lost");
    }

    #[test]
    fn a_complete_listing_drops_what_it_did_not_find_again() {
        let (_dir, store) = store();
        store.save_remote_document("ds1", "old", &remote("d-old", 1)).unwrap();
        store.save_remote_document("ds1", "new", &remote("d-new", 2)).unwrap();
        store.save_remote_document("ds2", "other", &remote("d-other", 1)).unwrap();

        store.drop_unlisted_remote("ds1", RunId(2)).unwrap();

        assert!(store.remote_document("ds1", "old").unwrap().is_none());
        assert_eq!(
            store.remote_document("ds1", "new").unwrap().unwrap().listed_run,
            Some(RunId(2))
        );
        assert!(store.remote_document("ds2", "other").unwrap().is_some());
    }

    #[test]
    fn explicit_reconciliation_overrides_rows_and_clears_unlisted_ones() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let kept = page("https://a.example/kept", "one");
        let deleted = page("https://a.example/deleted", "two");
        for p in [&kept, &deleted] {
            store.record_intent(&intent(p, run)).unwrap();
            store.record_written(p.url.as_str(), p.url.path(), "b", "{}").unwrap();
            store.record_metadata_applied(&[p.url.to_string()], false).unwrap();
        }

        // Without overwrite, existing rows win.
        let listed = RemoteDocument { content_hash: Some("other".into()), ..remote("d9", run.0) };
        let seed =
            ReconciledPage { knowledge_base: "docs", dataset_id: "ds1", document: &listed, run };
        assert!(!store.seed_reconciled_page(&kept.url, &seed, false).unwrap());
        assert_eq!(
            store.page(kept.url.as_str()).unwrap().unwrap().document_id.as_deref(),
            Some("/kept")
        );

        assert!(store.seed_reconciled_page(&kept.url, &seed, true).unwrap());
        let row = store.page(kept.url.as_str()).unwrap().unwrap();
        assert_eq!(
            (row.document_id.as_deref(), row.content_hash.as_deref()),
            (Some("d9"), Some("other"))
        );
        assert_eq!(row.validators.etag, None, "fetched in full next time");

        let cleared = store.clear_unlisted_pages("ds1", &["d9".to_string()].into()).unwrap();
        assert_eq!(cleared, 1);
        let row = store.page(deleted.url.as_str()).unwrap().unwrap();
        assert_eq!((row.document_id, row.content_hash, row.stage), (None, None, Stage::Planned));
        assert_eq!(row.validators.etag, None);
    }

    #[test]
    fn a_moved_page_keeps_its_old_document_until_the_new_one_exists() {
        let (_dir, store) = store();
        let run = store.begin_run().unwrap();
        let page = page("https://a.example/x", "text");
        store.record_intent(&intent(&page, run)).unwrap();
        store.record_written(page.url.as_str(), "d1", "b1", "{}").unwrap();

        let moved = Intent { dataset_id: "ds2", ..intent(&page, run) };
        store.record_intent(&moved).unwrap();
        let url = page.url.as_str();
        assert_eq!(store.moved_documents_of(url).unwrap(), vec![("ds1".into(), "d1".into())]);
        assert!(store.moved_documents_ready().unwrap().is_empty(), "no new document yet");

        store.record_written(url, "d2", "b2", "{}").unwrap();
        let ready = store.moved_documents_ready().unwrap();
        assert_eq!(ready, vec![(url.to_string(), "ds1".to_string(), "d1".to_string())]);
        store.drop_moved_document("ds1", "d1").unwrap();
        assert!(store.moved_documents_of(url).unwrap().is_empty());

        // Moving back onto the very document left behind voids the entry.
        store.record_intent(&intent(&page, run)).unwrap();
        assert_eq!(store.moved_documents_of(url).unwrap().len(), 1);
        store.record_written(url, "d2", "b3", "{}").unwrap();
        assert!(store.moved_documents_of(url).unwrap().is_empty());
    }

    #[test]
    fn a_missed_run_counts_only_for_pages_inside_its_scope() {
        let (_dir, store) = store();
        let first = store.begin_run().unwrap();
        store.record_run_knowledge_base(first, "docs").unwrap();
        let on_a = page("https://a.example/x", "a");
        let on_b = page("https://b.example/x", "b");
        let on_sub = page("https://docs.a.example/x", "c");
        for p in [&on_a, &on_b, &on_sub] {
            store.record_intent(&intent(p, first)).unwrap();
            store.record_written(p.url.as_str(), p.url.as_str(), "b", "{}").unwrap();
        }
        store.finish_run(first, true, "{}").unwrap();

        let crawl_a = store.begin_run().unwrap();
        store.record_run_knowledge_base(crawl_a, "docs").unwrap();
        let scope = RunScope { hosts: ["a.example".to_string()].into(), subdomains: false };
        store.set_run_scope(crawl_a, &scope).unwrap();
        let candidates = store.prune_candidates("docs", crawl_a, Some(1)).unwrap();
        let urls: Vec<&str> = candidates.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(urls, vec![on_a.url.as_str()]);

        let wide = RunScope { subdomains: true, ..scope };
        store.set_run_scope(crawl_a, &wide).unwrap();
        assert_eq!(store.prune_candidates("docs", crawl_a, Some(1)).unwrap().len(), 2);
        assert_eq!(store.document_count("docs").unwrap(), 3);
    }

    #[test]
    fn a_crawls_scope_is_its_start_and_extra_hosts() {
        let crawl = site_crawler::CrawlConfig {
            start_urls: vec!["https://Docs.Example.com/guide/".into()],
            extra_hosts: vec!["cdn.example.net:8443".into(), "https://blog.example.org/".into()],
            allow_subdomains: true,
            ..site_crawler::CrawlConfig::default()
        };
        let scope = RunScope::of_crawl(&crawl);
        let hosts: Vec<&str> = scope.hosts.iter().map(String::as_str).collect();
        assert_eq!(hosts, vec!["blog.example.org", "cdn.example.net", "docs.example.com"]);
        assert!(scope.contains("https://api.docs.example.com/x"));
        assert!(!scope.contains("https://notdocs.example.com/x"));
        assert!(!scope.contains("not a url"));
    }
}
