//! The server's state: knowledge bases, documents, chunks, metadata, tags.
//!
//! Handlers are plain synchronous methods on [`Store`] that take a parsed
//! [`Req`] and return a [`Reply`]; the transport calls them under the store
//! lock. Indexing is simulated: a written document is `waiting` until both
//! its `ready_at` instant has passed and at least one later request has been
//! handled, so with a zero delay the write's own response says `waiting`
//! and the next look says `completed`, as on a fast real server.
//!
//! Ids and batch suffixes come from one RNG seeded by the builder, so a run
//! with the same seed and request order produces the same ids.

mod datasets;
mod documents;
mod metadata;
mod model;
mod render;
mod rules;
mod segments;
mod tags;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::reply::{Reply, Req};
use super::routes as r;
use super::{DatasetView, DocumentView};

use model::{Dataset, Tag};

/// The whole server state.
pub(crate) struct Store {
    rng: StdRng,
    indexing_delay: Duration,
    /// Number of requests handled so far; indexing completes only at a
    /// later request than the write (see the module doc).
    seq: u64,
    /// The owner account every request runs as.
    account_id: String,
    datasets: Vec<Dataset>,
    tags: Vec<Tag>,
    /// Every batch id handed out, so none is ever reused (a reused id would
    /// resurrect an old batch's indexing status).
    batches: HashSet<String>,
}

/// The clock a handler runs under.
#[derive(Clone, Copy)]
pub(crate) struct Now {
    /// Monotonic instant (tokio's, so paused-time tests can drive it).
    pub(crate) instant: Instant,
    /// Request sequence number.
    pub(crate) seq: u64,
    /// Wall-clock Unix seconds with fraction.
    pub(crate) wall: f64,
}

impl Now {
    pub(crate) fn secs(&self) -> i64 {
        self.wall as i64
    }
}

impl Store {
    pub(crate) fn new(seed: u64, indexing_delay: Duration) -> Store {
        let mut rng = StdRng::seed_from_u64(seed);
        let account_id = uuid(&mut rng);
        Store {
            rng,
            indexing_delay,
            seq: 0,
            account_id,
            datasets: Vec::new(),
            tags: Vec::new(),
            batches: HashSet::new(),
        }
    }

    fn now(&self, instant: Instant) -> Now {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Now { instant, seq: self.seq, wall }
    }

    /// 404 "Dataset not found." when the route names a dataset that does not
    /// exist; Dify checks this before the rate limit and the body.
    pub(crate) fn check_dataset(&self, req: &Req) -> Result<(), Reply> {
        let Some(id) = dataset_param(req) else {
            return Ok(());
        };
        if self.dataset_index(id).is_some() {
            return Ok(());
        }
        if req.route == r::CREATE_BY_TEXT || req.route == r::CREATE_BY_FILE {
            return Err(Reply::not_found(&format!(
                "Dataset not found. You have requested this URI [{}] but did you mean \
                 /v1/datasets/<uuid:dataset_id>/document/create-by-text or \
                 /v1/datasets/<uuid:dataset_id>/document/create_by_text or \
                 /v1/datasets/<uuid:dataset_id>/document/create-by-file ?",
                req.path
            )));
        }
        Err(Reply::not_found("Dataset not found."))
    }

    /// Runs the handler for `req`.
    pub(crate) fn handle(&mut self, req: &Req, instant: Instant) -> Reply {
        self.seq += 1;
        let now = self.now(instant);
        match req.route {
            r::CREATE_DATASET => self.create_dataset(req, now),
            r::LIST_DATASETS => self.list_datasets(req, now),
            r::GET_DATASET => self.get_dataset(req, now),
            r::UPDATE_DATASET => self.update_dataset(req, now),
            r::DELETE_DATASET => self.delete_dataset(req),
            r::CREATE_BY_TEXT => self.create_by_text(req, now),
            r::CREATE_BY_FILE => self.create_by_file(req, now),
            r::UPDATE_BY_TEXT => self.update_by_text(req, now),
            r::UPDATE_BY_FILE => self.update_by_file(req, now),
            r::LIST_DOCUMENTS => self.list_documents(req, now),
            r::GET_DOCUMENT => self.get_document(req, now),
            r::DELETE_DOCUMENT => self.delete_document(req, now),
            r::INDEXING_STATUS => self.indexing_status(req, now),
            r::DOCUMENT_STATUS => self.document_status(req, now),
            _ => self.handle_more(req, now),
        }
    }

    fn handle_more(&mut self, req: &Req, now: Now) -> Reply {
        match req.route {
            r::ASSIGN_METADATA => self.assign_metadata(req, now),
            r::CREATE_METADATA => self.create_metadata(req),
            r::LIST_METADATA => self.list_metadata(req),
            r::UPDATE_METADATA => self.update_metadata(req),
            r::DELETE_METADATA => self.delete_metadata(req),
            r::BUILT_IN_METADATA => metadata::built_in_fields(),
            r::TOGGLE_BUILT_IN_METADATA => self.toggle_built_in(req),
            r::RETRIEVE => self.retrieve(req, now),
            r::LIST_SEGMENTS => self.list_segments(req, now),
            r::CREATE_SEGMENTS => self.create_segments(req, now),
            r::GET_SEGMENT => self.get_segment(req, now),
            r::UPDATE_SEGMENT => self.update_segment(req, now),
            r::DELETE_SEGMENT => self.delete_segment(req, now),
            _ => self.handle_tags(req),
        }
    }

    fn handle_tags(&mut self, req: &Req) -> Reply {
        match req.route {
            r::LIST_TAGS => self.list_tags(),
            r::CREATE_TAG => self.create_tag(req),
            r::UPDATE_TAG => self.update_tag(req),
            r::DELETE_TAG => self.delete_tag(req),
            r::BIND_TAGS => self.bind_tags(req),
            r::UNBIND_TAGS => self.unbind_tags(req),
            r::DATASET_TAGS => self.dataset_tags(req),
            _ => Reply::html_not_found(),
        }
    }

    pub(crate) fn dataset_index(&self, id: &str) -> Option<usize> {
        self.datasets.iter().position(|d| d.id == id)
    }

    /// The dataset a (checked) request names.
    fn dataset_mut(&mut self, req: &Req) -> Result<&mut Dataset, Reply> {
        let id = req.param(0);
        self.datasets
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| Reply::not_found("Dataset not found."))
    }

    fn dataset(&self, req: &Req) -> Result<&Dataset, Reply> {
        let id = req.param(0);
        self.datasets
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| Reply::not_found("Dataset not found."))
    }

    fn new_id(&mut self) -> String {
        uuid(&mut self.rng)
    }

    /// `YYYYMMDDHHMMSS` plus six random digits, unique in the store.
    fn new_batch(&mut self, now: Now) -> String {
        loop {
            let suffix: u32 = self.rng.random_range(0..1_000_000);
            let batch = format!("{}{suffix:06}", civil_stamp(now.secs()));
            if self.batches.insert(batch.clone()) {
                return batch;
            }
        }
    }

    // ---- views for tests ----

    pub(crate) fn dataset_views(&self) -> Vec<DatasetView> {
        self.datasets.iter().map(|d| d.view(&self.tags)).collect()
    }

    pub(crate) fn document_views(&self, dataset_id: &str) -> Vec<DocumentView> {
        // Seen as by a request arriving now, i.e. after every write so far.
        let mut now = self.now(Instant::now());
        now.seq += 1;
        let Some(ds) = self.datasets.iter().find(|d| d.id == dataset_id) else {
            return Vec::new();
        };
        let mut docs: Vec<DocumentView> = ds.documents.iter().map(|d| d.view(now)).collect();
        docs.sort_by_key(|d| d.position);
        docs
    }

    pub(crate) fn complete_all_indexing(&mut self) {
        let past = Instant::now();
        let seq = self.seq;
        for doc in self.datasets.iter_mut().flat_map(|d| d.documents.iter_mut()) {
            doc.finish_indexing(past, seq);
        }
        // The next request is after every write, whatever the delay.
        self.seq += 1;
    }

    pub(crate) fn set_document_enabled(&mut self, dataset_id: &str, document_id: &str, on: bool) {
        let now = self.now(Instant::now());
        let doc = self
            .datasets
            .iter_mut()
            .filter(|d| d.id == dataset_id)
            .flat_map(|d| d.documents.iter_mut())
            .find(|d| d.id == document_id);
        if let Some(doc) = doc {
            doc.enabled = on;
            doc.disabled_at = if on { None } else { Some(now.secs()) };
        }
    }
}

/// The dataset id in a route's path, if the route has one.
fn dataset_param(req: &Req) -> Option<&str> {
    req.route.contains("{dataset_id}").then(|| req.param(0))
}

/// A random version-4 UUID string.
pub(crate) fn uuid(rng: &mut StdRng) -> String {
    let mut b: [u8; 16] = rng.random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// UTC `YYYYMMDDHHMMSS` for Unix seconds (days-to-civil conversion).
fn civil_stamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Parses a pagination parameter leniently (Flask `type=int` falls back to
/// the default on garbage).
fn lenient_int(value: Option<&str>, default: i64) -> i64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// One page of `items` the way Flask-SQLAlchemy's `paginate(max_per_page=100,
/// error_out=False)` cuts it: a zero or negative limit means the default 20.
fn page_of<T: Clone>(items: &[T], page: i64, limit: i64) -> Vec<T> {
    let per_page = if limit <= 0 { 20 } else { limit.min(100) } as usize;
    let page = page.max(1) as usize;
    items.iter().skip((page - 1).saturating_mul(per_page)).take(per_page).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_stamp_matches_known_dates() {
        assert_eq!(civil_stamp(0), "19700101000000");
        // 2026-12-03 17:30:57 UTC, the first batch of the transcripts.
        assert_eq!(civil_stamp(1_796_319_057), "20261203173057");
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let mut rng = StdRng::seed_from_u64(3);
        let id = uuid(&mut rng);
        assert!(super::super::routes::is_uuid(&id));
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn pages_cap_at_one_hundred() {
        let items: Vec<u32> = (0..250).collect();
        assert_eq!(page_of(&items, 1, 1000).len(), 100);
        assert_eq!(page_of(&items, 3, 100).len(), 50);
        assert_eq!(page_of(&items, 1, 0).len(), 20);
        assert!(page_of(&items, 9, 100).is_empty());
    }
}
