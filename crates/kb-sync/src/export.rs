//! Folder export: one Markdown file per page plus a manifest.
//!
//! Layout under the export folder `DIR`:
//!
//! ```text
//! DIR/manifest.jsonl                      one JSON line per page
//! DIR/docs.example.com/index.md           https://docs.example.com/
//! DIR/docs.example.com/guide/index.md     https://docs.example.com/guide/
//! DIR/docs.example.com/guide/install.md   https://docs.example.com/guide/install(.html)
//! DIR/docs.example.com/search-q1a2b3c4d.md  https://docs.example.com/search?q=x
//! ```
//!
//! Paths mirror URLs but never trust them: every segment is percent-decoded
//! and then sanitized (no `..`, no leading dot, no characters that Windows or
//! shells reserve, no reserved device names, bounded length with a hash
//! suffix when cut), so no URL can write outside `DIR`. A path longer than
//! [`MAX_RELATIVE_PATH_BYTES`] in all keeps its leading folders and ends in a
//! hashed file name. Query strings are folded into the file name as a short
//! hash. When two URLs still map to the same file, the later one gets a hash
//! of its URL in the name; the manifest remembers each URL's file so names
//! stay stable across runs. Files are told apart without regard to case, as
//! on the case-insensitive file systems of macOS and Windows, so `/Guide`
//! and `/guide` get two files there too and pruning one cannot delete the
//! other.
//!
//! Each file starts with YAML front matter (`url`, `title`, `description`,
//! `language`, `crawled_at` in RFC 3339, `content_hash`). Every value is a
//! double-quoted YAML scalar with escapes, so titles holding `:`, `#`, quotes
//! or newlines stay valid YAML.
//!
//! Re-running into the same folder updates it in place: a file is rewritten
//! only when its content or front matter changed (`crawled_at` aside, which
//! therefore records when the current content was first written). The
//! manifest is rewritten atomically (temporary file, then rename) by
//! [`FolderSink::finish`] and, during a run, after every
//! [`MANIFEST_CHECKPOINT_PAGES`] new or changed files (or a quarter of the
//! manifest, when that is more, which keeps the rewriting linear in the
//! site's size). A run that is killed leaves a marker file behind; the next
//! one then reads the front matter of files the manifest misses, so every
//! file on disk is known again and can be pruned.
//!
//! Only a complete run marks the pages it did not see `stale`: after a
//! cancelled or limited run their lines keep the status they had. Pages the
//! server reported gone keep their file and line with `gone`. Pruning
//! ([`Prune`]) deletes those files and drops their lines; unseen pages are
//! pruned only after a complete crawl.
//!
//! Each manifest line also keeps the page's validators and links, so the
//! next run can ask for the page conditionally and, when it answers 304,
//! follow the stored links instead of its body. A line without `links`
//! (written before links were kept) gets no validators: the page is fetched
//! in full once, rather than a 304 ending the crawl there.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::page::PageRecord;
use crate::report::ExportCounts;
use crate::state::Validators;

/// The manifest's file name inside the export folder.
pub const MANIFEST_FILE: &str = "manifest.jsonl";

/// Present in the export folder while a run writes to it: finding it on
/// open means the last run was killed before it saved the manifest.
const RUN_MARKER_FILE: &str = ".export-running";

/// New or changed files after which the manifest is saved mid-run, at the
/// least; see the module documentation.
pub const MANIFEST_CHECKPOINT_PAGES: usize = 100;

/// The longest file or directory name written, in bytes (file systems
/// allow 255).
const MAX_SEGMENT_BYTES: usize = 120;

/// The longest path written below the export folder, in bytes, so the
/// folder's own path still fits in `PATH_MAX` (4,096 on Linux, 1,024 on
/// macOS) with room to spare.
pub const MAX_RELATIVE_PATH_BYTES: usize = 900;

/// Bytes of front matter read to recover a file's URL after a killed run.
const FRONT_MATTER_PROBE_BYTES: u64 = 16 * 1024;

/// The most directory levels below the host folder.
const MAX_PATH_SEGMENTS: usize = 32;

/// Hex characters of the short hashes used in names.
const SHORT_HASH: usize = 8;

/// Why the export could not proceed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// A file or folder could not be created, read, written or removed.
    #[error("{action} {path}")]
    Io {
        /// What was attempted ("writing", "creating folder", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A manifest line is not valid JSON of the expected shape.
    #[error("reading {path} line {line}: not a manifest entry")]
    Manifest {
        /// The manifest path.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// One line of `manifest.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The page URL.
    pub url: String,
    /// The Markdown file, relative to the export folder, `/`-separated.
    pub path: String,
    /// The page title.
    #[serde(default)]
    pub title: Option<String>,
    /// The page's status after the last run.
    pub status: EntryStatus,
    /// The content hash of the Markdown in the file.
    pub hash: String,
    /// When the page was last fetched or confirmed, RFC 3339.
    #[serde(default)]
    pub crawled_at: String,
    /// The `ETag` of the fetch that produced the file, for conditional
    /// requests on the next run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The `Last-Modified` of that fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
    /// The page's links from that fetch ([`PageRecord::links`]), followed
    /// when the page answers 304; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<String>>,
}

/// A manifest entry's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Fetched in the last run; the file holds its content.
    Exported,
    /// The server answered 304 in the last run; the file is still current.
    NotModified,
    /// Fetching failed in the last run; the file holds older content.
    Failed,
    /// The server said the page is gone (404/410); the file is kept until
    /// pruned.
    Gone,
    /// The last run did not see the page; the file is kept until pruned.
    Stale,
}

/// What [`FolderSink::write`] did with a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportOutcome {
    /// A new file was written.
    New,
    /// An existing file was rewritten with new content.
    Changed,
    /// The file already held this content and was left alone.
    Unchanged,
}

/// Which files [`FolderSink::finish`] deletes; ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prune {
    /// Delete nothing; gone and unseen pages keep their files.
    Nothing,
    /// Delete files of pages the server reported gone.
    Gone,
    /// Delete files of gone pages and of pages this run did not see. Only
    /// safe after a complete crawl.
    GoneAndUnseen,
}

/// Writes pages into a folder as Markdown files with a manifest.
///
/// Methods take `&self` and may be called from several threads; they do
/// blocking file I/O, so async callers should use `spawn_blocking`.
#[derive(Debug)]
pub struct FolderSink {
    dir: PathBuf,
    /// A std mutex: every critical section is synchronous file I/O and the
    /// lock is never held across an `.await`. Writes are serialized, which
    /// keeps path claims consistent; a page file is small, so this is not
    /// the pipeline's bottleneck.
    state: Mutex<ExportState>,
}

#[derive(Debug, Default)]
struct ExportState {
    /// Manifest entries keyed by URL.
    entries: BTreeMap<String, ManifestEntry>,
    /// Case-folded relative path ([`claim_key`]) -> URL owning it.
    claims: HashMap<String, String>,
    /// URLs seen in this run.
    seen: HashSet<String>,
    /// Files written or rewritten since the manifest was last saved.
    unsaved: usize,
    counts: ExportCounts,
}

impl FolderSink {
    /// Opens (creating if needed) the export folder `dir` and loads its
    /// manifest when there is one.
    ///
    /// # Errors
    ///
    /// [`ExportError::Io`] when the folder cannot be created or the manifest
    /// read, [`ExportError::Manifest`] when a manifest line is malformed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FolderSink, ExportError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(io_err("creating folder", &dir))?;

        let mut entries = read_manifest(&dir.join(MANIFEST_FILE))?;
        let mut claims = HashMap::new();
        for entry in entries.values() {
            // A manifest from before paths were told apart by case may hold
            // two that differ only in case; the first keeps the claim, and
            // pruning the other leaves the shared file alone.
            claims.entry(claim_key(&entry.path)).or_insert_with(|| entry.url.clone());
        }
        let marker = dir.join(RUN_MARKER_FILE);
        if marker.exists() {
            let found = recover_unlisted(&dir, &mut entries, &mut claims);
            tracing::info!(files = found, dir = %dir.display(), "recovered files of a killed run");
        }
        fs::write(&marker, b"").map_err(io_err("writing", &marker))?;

        let counts = ExportCounts { dir: dir.display().to_string(), ..ExportCounts::default() };
        let state = ExportState { entries, claims, counts, ..ExportState::default() };
        Ok(FolderSink { dir, state: Mutex::new(state) })
    }

    /// The export folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when the manifest has a file for `url`, so a 304 for it leaves
    /// the folder complete.
    pub fn has_page(&self, url: &Url) -> bool {
        let state = self.lock();
        state.entries.get(url.as_str()).is_some_and(|e| self.dir.join(&e.path).is_file())
    }

    /// Validators and links of pages whose file exists, keyed by URL, so
    /// a re-run can fetch them conditionally (a 304 keeps the file as it is
    /// and the crawl goes on through the stored links). Entries whose links
    /// are unknown are left out.
    pub fn validators(&self) -> HashMap<String, Validators> {
        let state = self.lock();
        state
            .entries
            .values()
            .filter(|e| e.etag.is_some() || e.last_modified.is_some())
            .filter(|e| self.dir.join(&e.path).is_file())
            .filter_map(|e| {
                let validators = Validators {
                    etag: e.etag.clone(),
                    last_modified: e.last_modified.clone(),
                    links: e.links.clone()?,
                };
                Some((e.url.clone(), validators))
            })
            .collect()
    }

    /// Writes `page` to its file unless the file already holds the same
    /// content, and records it in the manifest.
    ///
    /// # Errors
    ///
    /// [`ExportError::Io`] when the file cannot be written.
    pub fn write(&self, page: &PageRecord) -> Result<ExportOutcome, ExportError> {
        let url = page.url.as_str().to_owned();
        let whole_seconds = page.crawled_at.replace_nanosecond(0).unwrap_or(page.crawled_at);
        let crawled_at = whole_seconds.format(&Rfc3339).unwrap_or_default();
        let rendered = render_page(page, &crawled_at);
        let mut state = self.lock();

        let rel = state.path_for(&page.url);
        let outcome = self.write_if_changed(&rel, &rendered)?;
        match outcome {
            ExportOutcome::New => state.counts.new += 1,
            ExportOutcome::Changed => state.counts.changed += 1,
            ExportOutcome::Unchanged => state.counts.unchanged += 1,
        }
        if outcome != ExportOutcome::Unchanged {
            state.unsaved += 1;
        }

        let entry = ManifestEntry {
            url: url.clone(),
            path: rel,
            title: page.title.clone(),
            status: EntryStatus::Exported,
            hash: page.content_hash.clone(),
            crawled_at,
            etag: page.etag.clone(),
            last_modified: page.last_modified.clone(),
            links: Some(page.links.clone()),
        };
        state.seen.insert(url.clone());
        state.entries.insert(url, entry);
        tracing::debug!(url = %page.url, ?outcome, "exported page");

        if state.unsaved >= MANIFEST_CHECKPOINT_PAGES.max(state.entries.len() / 4) {
            self.write_manifest(&state.entries)?;
            state.unsaved = 0;
            tracing::debug!(pages = state.entries.len(), "manifest saved");
        }
        Ok(outcome)
    }

    /// Records a 304 for `url`: its file stays as it is and counts as
    /// unchanged. Returns false when the folder has no file for it (the
    /// page should be fetched in full).
    pub fn not_modified(&self, url: &Url) -> bool {
        let known = self.mark(url, EntryStatus::NotModified);
        if known {
            self.lock().counts.unchanged += 1;
        }
        known
    }

    /// Records that fetching `url` failed this run for a reason other than
    /// 404/410. The file, if any, is kept.
    pub fn failed(&self, url: &Url) {
        self.mark(url, EntryStatus::Failed);
    }

    /// Records that the server answered 404 or 410 for `url`. The file, if
    /// any, is kept until pruned.
    pub fn gone(&self, url: &Url) {
        self.mark(url, EntryStatus::Gone);
    }

    fn mark(&self, url: &Url, status: EntryStatus) -> bool {
        let mut state = self.lock();
        let key = url.as_str().to_owned();
        let Some(entry) = state.entries.get_mut(&key) else { return false };
        entry.status = status;
        state.seen.insert(key);
        true
    }

    /// Ends the run: when it was `complete` (the crawl saw every page in
    /// scope), marks the pages it did not see stale; deletes what `prune`
    /// asks for (unseen pages only after a complete run) and rewrites the
    /// manifest atomically. Returns the run's export counters.
    ///
    /// # Errors
    ///
    /// [`ExportError::Io`] when a pruned file cannot be removed or the
    /// manifest cannot be written.
    pub fn finish(&self, prune: Prune, complete: bool) -> Result<ExportCounts, ExportError> {
        let mut state = self.lock();
        let prune = if complete { prune } else { prune.min(Prune::Gone) };
        if complete {
            state.mark_unseen_stale();
        }

        let doomed: Vec<ManifestEntry> =
            state.entries.values().filter(|e| prunable(e.status, prune)).cloned().collect();
        for entry in doomed {
            let key = claim_key(&entry.path);
            if state.claims.get(&key) == Some(&entry.url) {
                self.remove_file(&entry.path)?;
                state.claims.remove(&key);
            }
            state.entries.remove(&entry.url);
            state.counts.pruned += 1;
        }

        state.counts.stale =
            state.entries.values().filter(|e| e.status == EntryStatus::Stale).count() as u64;
        self.write_manifest(&state.entries)?;
        state.unsaved = 0;
        let marker = self.dir.join(RUN_MARKER_FILE);
        match fs::remove_file(&marker) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("removing", &marker)(err));
            }
            _ => {}
        }
        Ok(state.counts.clone())
    }

    fn lock(&self) -> MutexGuard<'_, ExportState> {
        // A panic while holding the lock leaves the maps consistent (every
        // update is a single insert or remove), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_if_changed(&self, rel: &str, rendered: &str) -> Result<ExportOutcome, ExportError> {
        let path = self.dir.join(rel);
        let outcome = match fs::read_to_string(&path) {
            Ok(old) if same_ignoring_crawled_at(&old, rendered) => {
                return Ok(ExportOutcome::Unchanged);
            }
            Ok(_) => ExportOutcome::Changed,
            Err(err) if err.kind() == io::ErrorKind::NotFound => ExportOutcome::New,
            Err(err) => return Err(io_err("reading", &path)(err)),
        };

        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err("creating folder", parent))?;
        }
        write_atomically(&path, rendered.as_bytes(), false)?;
        Ok(outcome)
    }

    fn remove_file(&self, rel: &str) -> Result<(), ExportError> {
        let path = self.dir.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_err("removing", &path)(err)),
        }

        // Empty folders left behind are removed up to the export root; a
        // folder that still holds anything stops the walk (remove_dir fails).
        let mut parent = path.parent();
        while let Some(dir) = parent {
            if dir == self.dir || fs::remove_dir(dir).is_err() {
                break;
            }
            parent = dir.parent();
        }
        Ok(())
    }

    fn write_manifest(&self, entries: &BTreeMap<String, ManifestEntry>) -> Result<(), ExportError> {
        let mut out = Vec::new();
        for entry in entries.values() {
            // Serializing a struct of strings and unit enums cannot fail.
            let line = serde_json::to_string(entry).unwrap_or_default();
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        write_atomically(&self.dir.join(MANIFEST_FILE), &out, true)
    }
}

impl ExportState {
    /// The file for `url`: the one the manifest already assigned, else the
    /// URL-derived path, made unique if another URL holds it.
    fn path_for(&mut self, url: &Url) -> String {
        if let Some(entry) = self.entries.get(url.as_str())
            && self.claims.get(&claim_key(&entry.path)).is_some_and(|owner| owner == url.as_str())
        {
            return entry.path.clone();
        }

        let mut rel = page_path(url);
        if self.claims.get(&claim_key(&rel)).is_some_and(|owner| owner != url.as_str()) {
            rel = with_suffix(&rel, &short_hash(url.as_str()));
        }
        self.claims.insert(claim_key(&rel), url.as_str().to_owned());
        rel
    }

    fn mark_unseen_stale(&mut self) {
        for (url, entry) in &mut self.entries {
            if !self.seen.contains(url) {
                entry.status = EntryStatus::Stale;
            }
        }
    }
}

/// The key under which a relative path is claimed: file systems that
/// ignore case (macOS, Windows) see `Guide.md` and `guide.md` as one file.
fn claim_key(rel: &str) -> String {
    rel.to_lowercase()
}

/// Adds manifest entries for Markdown files this sink wrote that the
/// manifest does not list (a run killed between two manifest saves), read
/// from their front matter. Returns how many were added; unreadable files
/// and files without our front matter are left alone.
fn recover_unlisted(
    dir: &Path,
    entries: &mut BTreeMap<String, ManifestEntry>,
    claims: &mut HashMap<String, String>,
) -> usize {
    let mut found = 0;
    let mut pending = vec![(dir.to_owned(), 0_usize)];
    while let Some((folder, depth)) = pending.pop() {
        let Ok(listing) = fs::read_dir(&folder) else { continue };
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            let Ok(kind) = item.file_type() else { continue };
            // Our own files never start with a dot; symbolic links are not
            // ours either and could lead out of the folder.
            if name.starts_with('.') || kind.is_symlink() {
                continue;
            }
            let path = item.path();
            if kind.is_dir() {
                if depth <= MAX_PATH_SEGMENTS + 2 {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            let Some(rel) = relative_path(dir, &path).filter(|r| r.ends_with(".md")) else {
                continue;
            };
            if claims.contains_key(&claim_key(&rel)) {
                continue;
            }
            let Some(entry) = read_front_matter(&path, &rel) else { continue };
            if entries.contains_key(&entry.url) {
                continue;
            }
            claims.insert(claim_key(&rel), entry.url.clone());
            entries.insert(entry.url.clone(), entry);
            found += 1;
        }
    }
    found
}

/// `path` below `dir`, `/`-separated, when it is safe to use as an entry.
fn relative_path(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/")).filter(|rel| is_safe_relative(rel))
}

/// The manifest entry a page file describes, from its front matter.
fn read_front_matter(path: &Path, rel: &str) -> Option<ManifestEntry> {
    use std::io::Read as _;

    let mut head = Vec::new();
    fs::File::open(path).ok()?.take(FRONT_MATTER_PROBE_BYTES).read_to_end(&mut head).ok()?;
    let text = String::from_utf8_lossy(&head);
    let body = text.strip_prefix(
        "---
",
    )?;
    let (yaml, _) = body.split_once(
        "
---
",
    )?;
    let mut fields = HashMap::new();
    for line in yaml.lines() {
        let (key, value) = line.split_once(": ")?;
        fields.insert(key, yaml_unquote(value)?);
    }
    let url = Url::parse(fields.get("url")?).ok()?;
    Some(ManifestEntry {
        url: url.to_string(),
        path: rel.to_owned(),
        title: fields.remove("title"),
        status: EntryStatus::Exported,
        hash: fields.remove("content_hash")?,
        crawled_at: fields.remove("crawled_at").unwrap_or_default(),
        etag: None,
        last_modified: None,
        links: None,
    })
}

fn prunable(status: EntryStatus, prune: Prune) -> bool {
    match prune {
        Prune::Nothing => false,
        Prune::Gone => status == EntryStatus::Gone,
        Prune::GoneAndUnseen => matches!(status, EntryStatus::Gone | EntryStatus::Stale),
    }
}

fn read_manifest(path: &Path) -> Result<BTreeMap<String, ManifestEntry>, ExportError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(err) => return Err(io_err("reading", path)(err)),
    };

    let mut entries = BTreeMap::new();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err("reading", path))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: ManifestEntry = serde_json::from_str(&line).map_err(|source| {
            ExportError::Manifest { path: path.to_owned(), line: i + 1, source }
        })?;
        if is_safe_relative(&entry.path) {
            entries.insert(entry.url.clone(), entry);
        } else {
            tracing::warn!(path = %entry.path, "ignoring manifest entry with an unsafe path");
        }
    }
    Ok(entries)
}

/// A hand-edited manifest must not make pruning delete outside the folder.
fn is_safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// Writes via a temporary file and a rename, so readers never see half a
/// file. `durable` adds an fsync before the rename: worth it for the
/// manifest, not for page files, where it cost about 4 ms a page and a file
/// lost to a power cut is simply rewritten by the next run (its content no
/// longer matches).
fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> Result<(), ExportError> {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let write = || -> io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)
    };
    write().map_err(|err| {
        let _ = fs::remove_file(&tmp);
        io_err("writing", path)(err)
    })
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.to_owned();
    move |source| ExportError::Io { action, path, source }
}

/// The file for `url`, relative to the export folder, `/`-separated.
pub fn page_path(url: &Url) -> String {
    let mut parts = vec![host_segment(url)];
    let raw: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let directory_like = url.path().ends_with('/') || raw.is_empty();

    let (dirs, file) = if directory_like {
        (&raw[..], "index".to_owned())
    } else {
        (&raw[..raw.len() - 1], file_stem(raw[raw.len() - 1]))
    };
    parts.extend(bounded_dirs(dirs));

    let mut name = file;
    if let Some(query) = url.query().filter(|q| !q.is_empty()) {
        name = format!("{name}-q{}", short_hash(query));
    }
    parts.push(format!("{name}.md"));
    bound_total_length(parts, url)
}

/// `parts` joined, or, when that is longer than [`MAX_RELATIVE_PATH_BYTES`],
/// the host and as many leading folders as fit followed by a file named
/// after a hash of the URL (unique, since the URL is).
fn bound_total_length(parts: Vec<String>, url: &Url) -> String {
    let joined = parts.join("/");
    if joined.len() <= MAX_RELATIVE_PATH_BYTES {
        return joined;
    }
    let hash = blake3::hash(url.as_str().as_bytes()).to_hex();
    let file = format!("long-{}.md", &hash[..2 * SHORT_HASH]);
    // Room for the file name and a collision suffix ([`with_suffix`]).
    let budget = MAX_RELATIVE_PATH_BYTES - file.len() - SHORT_HASH - 2;
    let mut kept: Vec<&str> = Vec::new();
    let mut len = 0;
    for part in &parts[..parts.len() - 1] {
        if len + part.len() + 1 > budget {
            break;
        }
        len += part.len() + 1;
        kept.push(part);
    }
    kept.push(&file);
    kept.join("/")
}

fn host_segment(url: &Url) -> String {
    let host = url.host_str().unwrap_or("no-host");
    match url.port() {
        Some(port) => sanitize_segment(&format!("{host}_{port}")),
        None => sanitize_segment(host),
    }
}

/// Directory names for `dirs`, with levels past the limit folded into one
/// hashed name so deep URLs cannot exceed path length limits.
fn bounded_dirs(dirs: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = dirs.iter().take(MAX_PATH_SEGMENTS).map(|d| dir_name(d)).collect();
    if dirs.len() > MAX_PATH_SEGMENTS {
        out.push(format!("deep-{}", short_hash(&dirs[MAX_PATH_SEGMENTS..].join("/"))));
    }
    out
}

/// Directory names never end in `.md`, so no folder can collide with a page
/// file of the same name.
fn dir_name(raw: &str) -> String {
    let name = sanitize_segment(raw);
    if name.to_ascii_lowercase().ends_with(".md") { format!("{name}_") } else { name }
}

fn file_stem(raw: &str) -> String {
    let name = sanitize_segment(raw);
    let lower = name.to_ascii_lowercase();
    let stem = [".html", ".htm"]
        .iter()
        .find_map(|ext| lower.ends_with(ext).then(|| &name[..name.len() - ext.len()]))
        .unwrap_or(&name);
    if stem.is_empty() { "index".to_owned() } else { stem.to_owned() }
}

/// A safe file or directory name from one percent-encoded URL path segment.
pub fn sanitize_segment(raw: &str) -> String {
    let decoded = percent_decode(raw);
    let cleaned: String = decoded
        .chars()
        .map(|c| if c.is_control() || "<>:\"/\\|?*".contains(c) { '_' } else { c })
        .collect();

    // Trailing dots and spaces are dropped by Windows; a leading dot would
    // hide the file (and "." / ".." would escape the folder).
    let trimmed = cleaned.trim_end_matches(['.', ' ']).trim_start();
    let mut name = match trimmed.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => trimmed.to_owned(),
    };
    if name.is_empty() {
        name.push('_');
    }
    if is_reserved_device_name(&name) {
        name.insert(0, '_');
    }
    bound_length(name, raw)
}

fn bound_length(name: String, raw: &str) -> String {
    if name.len() <= MAX_SEGMENT_BYTES {
        return name;
    }
    let mut cut = MAX_SEGMENT_BYTES - SHORT_HASH - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &name[..cut], short_hash(raw))
}

/// Names Windows maps to devices whatever their extension (`NUL.md` is
/// the null device), including the console names and the superscript
/// digits Windows also accepts after `COM` and `LPT`.
fn is_reserved_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ').to_uppercase();
    if matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" | "CLOCK$") {
        return true;
    }
    let Some(number) = stem.strip_prefix("COM").or_else(|| stem.strip_prefix("LPT")) else {
        return false;
    };
    let mut chars = number.chars();
    matches!((chars.next(), chars.next()), (Some('0'..='9' | '¹' | '²' | '³'), None))
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn short_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..SHORT_HASH].to_owned()
}

/// `a/b/name.md` -> `a/b/name-SUFFIX.md`.
fn with_suffix(rel: &str, suffix: &str) -> String {
    let stem = rel.strip_suffix(".md").unwrap_or(rel);
    format!("{stem}-{suffix}.md")
}

/// The whole file: front matter, a blank line, the Markdown.
pub fn render_page(page: &PageRecord, crawled_at: &str) -> String {
    let mut out = String::from("---\n");
    let fields = [
        ("url", Some(page.url.as_str())),
        ("title", page.title.as_deref()),
        ("description", page.description.as_deref()),
        ("language", page.language.as_deref()),
        ("crawled_at", Some(crawled_at)),
        ("content_hash", Some(page.content_hash.as_str())),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(out, "{key}: {}", yaml_string(value));
        }
    }
    out.push_str("---\n\n");
    out.push_str(&page.markdown);
    if !page.markdown.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Whether two rendered files differ only in the front matter's
/// `crawled_at` line (the Markdown itself is compared whole).
fn same_ignoring_crawled_at(old: &str, new: &str) -> bool {
    fn split(text: &str) -> Option<(Vec<&str>, &str)> {
        let (yaml, body) = text.strip_prefix("---\n")?.split_once("\n---\n")?;
        Some((yaml.lines().filter(|line| !line.starts_with("crawled_at: ")).collect(), body))
    }
    match (split(old), split(new)) {
        (Some(old), Some(new)) => old == new,
        _ => old == new,
    }
}

/// `value` as a double-quoted YAML scalar. Backslash and quote are escaped,
/// and so is every character YAML would read as a line break or that is not
/// printable, so the scalar always stays on one line.
pub fn yaml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{85}' => out.push_str("\\N"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            // Controls, the byte order mark and the two non-characters YAML
            // does not count as printable.
            c if c.is_control() || matches!(c, '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Reads back a scalar written by [`yaml_string`]; `None` for anything
/// else.
fn yaml_unquote(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'N' => '\u{85}',
            'L' => '\u{2028}',
            'P' => '\u{2029}',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                if hex.len() != 4 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            c @ ('"' | '\\') => c,
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(url: &str) -> String {
        page_path(&Url::parse(url).unwrap())
    }

    #[test]
    fn paths_mirror_urls() {
        assert_eq!(path("https://docs.example.com/"), "docs.example.com/index.md");
        assert_eq!(path("https://docs.example.com/guide/"), "docs.example.com/guide/index.md");
        assert_eq!(path("https://docs.example.com/a/b"), "docs.example.com/a/b.md");
        assert_eq!(path("https://docs.example.com/a/b.html"), "docs.example.com/a/b.md");
        assert_eq!(path("http://127.0.0.1:8080/x"), "127.0.0.1_8080/x.md");
        assert_eq!(path("https://x.example/.html"), "x.example/_html.md");
    }

    #[test]
    fn query_strings_are_hashed_into_the_name() {
        let a = path("https://x.example/search?q=a");
        let b = path("https://x.example/search?q=b");
        assert!(a.starts_with("x.example/search-q") && a.ends_with(".md"), "{a}");
        assert_ne!(a, b);
        assert!(path("https://x.example/?p=1").starts_with("x.example/index-q"));
    }

    #[test]
    fn hostile_segments_cannot_escape_or_misbehave() {
        for url in [
            "https://x.example/%2e%2e/%2e%2e/etc/passwd",
            "https://x.example/a/%2E%2E%2F%2E%2E%2Fb",
            "https://x.example/..%5C..%5Cwin",
            "https://x.example/CON/aux.txt",
            "https://x.example/a%00b/%3Cscript%3E",
            "https://x.example/.git/config",
        ] {
            let rel = path(url);
            assert!(is_safe_relative(&rel), "{url} -> {rel}");
            assert!(!rel.contains(['\\', '<', '>', ':', '\0']), "{url} -> {rel}");
            assert!(rel.split('/').all(|s| !s.starts_with('.')), "{url} -> {rel}");
        }
        assert_eq!(path("https://x.example/CON/aux"), "x.example/_CON/_aux.md");
    }

    #[test]
    fn long_and_deep_paths_are_bounded() {
        let long = format!("https://x.example/{}", "é".repeat(300));
        let rel = path(&long);
        assert!(rel.split('/').all(|s| s.len() <= MAX_SEGMENT_BYTES + 3), "{rel}");
        let deep = format!("https://x.example/{}end", "d/".repeat(100));
        let segments = path(&deep).split('/').count();
        assert!(segments <= MAX_PATH_SEGMENTS + 3, "{segments}");
        assert_ne!(path(&deep), path(&format!("https://x.example/{}other", "d/".repeat(100))));
    }

    #[test]
    fn directories_never_look_like_page_files() {
        assert_eq!(path("https://x.example/notes.md/a"), "x.example/notes.md_/a.md");
    }

    #[test]
    fn yaml_strings_escape_everything_that_breaks_a_line() {
        assert_eq!(yaml_string(r#"a: "b" \ c"#), r#""a: \"b\" \\ c""#);
        assert_eq!(yaml_string("x\ny\u{2028}z\u{7}"), r#""x\ny\Lz\u0007""#);
        assert_eq!(yaml_string("# not a comment"), "\"# not a comment\"");
    }

    #[test]
    fn percent_decoding_tolerates_broken_escapes() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn console_and_superscript_device_names_are_reserved() {
        for name in ["CONIN$", "conout$.md", "Clock$", "COM¹", "lpt³.txt", "CON .txt", "com0"] {
            assert!(is_reserved_device_name(name), "{name}");
        }
        for name in ["CONSOLE", "COM10", "LPT", "COMMA", "conin", "AUXILIARY", "nul-x"] {
            assert!(!is_reserved_device_name(name), "{name}");
        }
        assert_eq!(path("https://x.example/CONIN$"), "x.example/_CONIN$.md");
        assert_eq!(path("https://x.example/conout$/a"), "x.example/_conout$/a.md");
        assert_eq!(path("https://x.example/LPT%C2%B9"), "x.example/_LPT¹.md");
    }

    #[test]
    fn overlong_paths_keep_their_start_and_get_a_hashed_name() {
        let dirs = format!("{}/", "a".repeat(100)).repeat(20);
        let a = path(&format!("https://x.example/{dirs}page"));
        let b = path(&format!("https://x.example/{dirs}other"));
        assert!(a.len() <= MAX_RELATIVE_PATH_BYTES, "{} bytes", a.len());
        assert!(with_suffix(&a, &short_hash("x")).len() <= MAX_RELATIVE_PATH_BYTES);
        assert!(is_safe_relative(&a), "{a}");
        assert!(a.starts_with(&format!("x.example/{}/", "a".repeat(100))), "{a}");
        assert!(a.rsplit('/').next().unwrap().starts_with("long-"), "{a}");
        assert_ne!(a, b);

        // Long multi-byte names are cut on character boundaries too.
        let wide = format!("https://x.example/{}", format!("{}/", "é".repeat(59)).repeat(30));
        let rel = path(&wide);
        assert!(rel.len() <= MAX_RELATIVE_PATH_BYTES && rel.split('/').all(|s| s.len() <= 240));
    }

    #[test]
    fn case_is_ignored_when_claiming_paths() {
        let mut state = ExportState::default();
        let upper = Url::parse("https://x.example/Guide").unwrap();
        let lower = Url::parse("https://x.example/guide").unwrap();
        let first = state.path_for(&upper);
        let second = state.path_for(&lower);
        assert_eq!(first, "x.example/Guide.md");
        assert_ne!(claim_key(&first), claim_key(&second), "{second}");
    }

    #[test]
    fn only_the_front_matter_crawled_at_is_ignored() {
        let file = |at: &str, body: &str| format!("---\ncrawled_at: \"{at}\"\n---\n\n{body}\n");
        assert!(same_ignoring_crawled_at(&file("1", "text"), &file("2", "text")));
        assert!(!same_ignoring_crawled_at(
            &file("1", "crawled_at: one"),
            &file("1", "crawled_at: two")
        ));
    }

    #[test]
    fn yaml_unquote_refuses_what_yaml_string_never_writes() {
        for bad in ["plain", "\"open", "\"a\"b\"", "\"\\q\"", "\"\\u12\"", "\"\\\""] {
            assert_eq!(yaml_unquote(bad), None, "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn yaml_strings_stay_on_one_line_and_read_back(
            chars in proptest::collection::vec(proptest::prelude::any::<char>(), 0..60)
        ) {
            let text: String = chars.into_iter().collect();
            let quoted = yaml_string(&text);
            proptest::prop_assert!(quoted.lines().count() <= 1, "{:?}", quoted);
            proptest::prop_assert!(quoted.chars().all(|c| !c.is_control()), "{:?}", quoted);
            proptest::prop_assert_eq!(yaml_unquote(&quoted), Some(text));
        }
    }
}
