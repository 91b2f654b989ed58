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
//! suffix when cut), so no URL can write outside `DIR`. Query strings are
//! folded into the file name as a short hash. When two URLs still map to the
//! same file, the later one gets a hash of its URL in the name; the manifest
//! remembers each URL's file so names stay stable across runs.
//!
//! Each file starts with YAML front matter (`url`, `title`, `description`,
//! `language`, `crawled_at` in RFC 3339, `content_hash`). Every value is a
//! double-quoted YAML scalar with escapes, so titles holding `:`, `#`, quotes
//! or newlines stay valid YAML.
//!
//! Re-running into the same folder updates it in place: a file is rewritten
//! only when its content or front matter changed (`crawled_at` aside, which
//! therefore records when the current content was first written), and the
//! manifest is rewritten atomically (temporary file, then rename) by
//! [`FolderSink::finish`]. Pages not seen in a run keep their file and their
//! manifest line with the status `stale`; pages the server reported gone keep
//! theirs with `gone`. Pruning ([`Prune`]) deletes those files and drops their
//! lines; the pipeline prunes unseen pages only after a complete crawl.
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

/// The longest file or directory name written, in bytes.
const MAX_SEGMENT_BYTES: usize = 120;

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

/// Which files [`FolderSink::finish`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Relative path -> URL owning it.
    claims: HashMap<String, String>,
    /// URLs seen in this run.
    seen: HashSet<String>,
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

        let entries = read_manifest(&dir.join(MANIFEST_FILE))?;
        let claims = entries.values().map(|e| (e.path.clone(), e.url.clone())).collect();
        let counts = ExportCounts { dir: dir.display().to_string(), ..ExportCounts::default() };
        let state = ExportState { entries, claims, seen: HashSet::new(), counts };
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

    /// Marks unseen pages stale, deletes what `prune` asks for and rewrites
    /// the manifest atomically. Returns the run's export counters.
    ///
    /// # Errors
    ///
    /// [`ExportError::Io`] when a pruned file cannot be removed or the
    /// manifest cannot be written.
    pub fn finish(&self, prune: Prune) -> Result<ExportCounts, ExportError> {
        let mut state = self.lock();
        state.mark_unseen_stale();

        let doomed: Vec<ManifestEntry> =
            state.entries.values().filter(|e| prunable(e.status, prune)).cloned().collect();
        for entry in doomed {
            self.remove_file(&entry.path)?;
            state.claims.remove(&entry.path);
            state.entries.remove(&entry.url);
            state.counts.pruned += 1;
        }

        state.counts.stale =
            state.entries.values().filter(|e| e.status == EntryStatus::Stale).count() as u64;
        self.write_manifest(&state.entries)?;
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
        if let Some(entry) = self.entries.get(url.as_str()) {
            return entry.path.clone();
        }

        let mut rel = page_path(url);
        if self.claims.get(&rel).is_some_and(|owner| owner != url.as_str()) {
            rel = with_suffix(&rel, &short_hash(url.as_str()));
        }
        self.claims.insert(rel.clone(), url.as_str().to_owned());
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
    parts.join("/")
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

fn is_reserved_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit())
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

fn same_ignoring_crawled_at(old: &str, new: &str) -> bool {
    let strip = |text: &str| -> String {
        text.split_inclusive('\n').filter(|line| !line.starts_with("crawled_at: ")).collect()
    };
    strip(old) == strip(new)
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
            c if c.is_control() || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
}
