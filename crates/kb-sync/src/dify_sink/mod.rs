//! The Dify writer: keeps knowledge bases equal to the crawled pages with
//! the fewest API calls, no duplicate documents and no lost pages.
//!
//! # Calls per page
//!
//! Each knowledge base is ensured once per run, and not at all when the
//! store already knows its dataset id and metadata field ids. A new page
//! costs one create-by-text; a changed page one update-by-text; metadata is
//! assigned for up to `metadata_batch_size` documents per call. A page
//! whose content hash equals what Dify holds, or that answered 304, costs
//! nothing. The price of that: a knowledge base deleted in Dify behind the
//! tool's back is only noticed when a page changes (the run then stops with
//! [`SyncError::KnowledgeBaseGone`] and the next one re-creates it) or by
//! `reconcile`.
//!
//! # Changed pages
//!
//! Update-by-text with the known id. Dify refuses it while the document is
//! not `available`; one read of the document then tells why. Still queued,
//! indexing or in error: a same-name create-by-text replaces the enabled
//! document in place (same id, new batch). When the store already knows
//! the document cannot be available (its indexing failed, or this run wrote
//! it and has not seen indexing finish) the same-name create is sent
//! straight away. Disabled or archived by a user: the page is left alone
//! and the reason recorded, because Dify does not match disabled documents
//! by name and a create would add a second one. Renamed by a user: also
//! left alone, for the same reason. Gone (404): a create makes a new
//! document and its id is recorded. A document disabled by pruning whose
//! page came back is enabled (and updated only if the page changed).
//!
//! # Crash safety
//!
//! Two facts carry the argument: a document's name is a function of its
//! URL, and a create with the name of an enabled document replaces it in
//! place. The store and Dify are then kept in this order for every page:
//!
//! 1. The intent (URL, dataset, name, new hash, the page itself) is
//!    committed before any write call.
//! 2. The write call runs.
//! 3. The document id, batch and the queued metadata are committed in one
//!    transaction.
//! 4. Metadata is sent in batches; rows leave the queue only after Dify
//!    confirmed them.
//!
//! Killed before 1: nothing happened. Between 1 and 3: the page is
//! `planned`; the next run (or `retry`, which resends the stored page without
//! crawling) writes again, by id when one was known and otherwise by name,
//! which at worst replaces the document with itself. A document created
//! just before the kill is therefore found again by name, never duplicated;
//! if the page has vanished meanwhile, pruning looks it up by name too.
//! After 3: the content hash is recorded, so an unchanged page is not
//! written again, and its queued metadata is flushed by the next `finish`.
//! During 4: full-replace assignments are idempotent, so resending a batch
//! that was partly applied is harmless. The store commits each step with WAL
//! before the next call starts, so a killed process cannot lose a step it
//! has acted on.
//!
//! A page that routing moved to another knowledge base is created there
//! first; step 1 records its old document, which is deleted only once the
//! new one exists (right after, or by a later `finish` if the process died
//! in between). A failed create therefore never leaves the page in neither
//! knowledge base.
//!
//! One window is left to Dify's rules: if a user disables a document after
//! a create whose reply was lost and before it is resent, the resend
//! creates a second document, because Dify matches only enabled documents
//! by name. `tests/sync_crash.rs` kills a sync before and right after every
//! request, and checks the rest.
//!
//! # Concurrency
//!
//! Methods take `&self` and may run at once for different pages; writes are
//! capped by a semaphore of `write_concurrency` permits, which also caps the
//! pooled connections. The same URL must not be submitted twice at once
//! (the pipeline deduplicates URLs before they reach the sink).
//!
//! # Lost state
//!
//! A knowledge base whose dataset the store has never listed completely is
//! reconciled before its first page is written: its documents are listed
//! (100 per call) and matched to pages by name; the `content_hash` and
//! descriptive metadata values stored on each document let unchanged pages
//! stay free. The store marks the dataset reconciled only after the whole
//! listing, so a run that stopped early (wrong key, Dify down, a dry run,
//! a kill) leaves the next one to list again. A dataset the sink created
//! empty needs no listing. A document found by an earlier run's listing is
//! confirmed with one cheap read before a page is adopted onto it.

mod error;
mod metadata;
mod options;
mod outcome;
mod reconcile;
mod run_end;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dify_client::{
    CreateDatasetRequest, CreateDocumentByTextRequest, Dataset, DifyClient, DisplayStatus, DocForm,
    DocumentAction, IndexingTechnique, ListDatasetsQuery, MetadataMode,
    UpdateDocumentByTextRequest,
};
use tokio::sync::{OnceCell, Semaphore};
use url::Url;

pub use error::SyncError;
pub use metadata::METADATA_FIELDS;
pub use options::{
    DEFAULT_METADATA_BATCH_SIZE, DEFAULT_POLL_INTERVAL, DEFAULT_PRUNE_AFTER_MISSED_RUNS,
    DEFAULT_PRUNE_MAX_SHARE, DEFAULT_WAIT_TIMEOUT, DEFAULT_WRITE_CONCURRENCY, DifySinkOptions,
    MAX_WRITE_CONCURRENCY, PruneMode, PruneOptions,
};
pub use outcome::{
    IndexingFailure, KbSummary, PlannedAction, ReconcileCounts, ReconcileSummary, RetrySummary,
    SyncOutcome, SyncSummary, UnsyncedPage, UnsyncedStage,
};
pub use run_end::RunEnd;

use crate::naming::document_name;
use crate::page::PageRecord;
use crate::state::{
    DatasetRecord, Intent, PageState, RemoteDocument, RunId, Stage, StateStore, Validators,
};

/// Writes pages into Dify knowledge bases. Cheap to clone; every method
/// takes `&self` and may run concurrently with the others.
#[derive(Clone)]
pub struct DifySink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DifySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DifySink")
            .field("client", &self.inner.client)
            .field("run", &self.inner.run)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    client: DifyClient,
    store: StateStore,
    options: DifySinkOptions,
    run: RunId,
    /// Knowledge bases by name, each resolved once.
    kbs: Mutex<HashMap<String, Arc<OnceCell<Arc<KbHandle>>>>>,
    /// Caps Dify writes in flight, and with them pooled connections.
    writes: Semaphore,
    /// Counters per knowledge base for the summary.
    counters: Mutex<BTreeMap<String, KbSummary>>,
    /// Indexing batches written this run: (dataset id, batch).
    batches: Mutex<Vec<(String, String)>>,
    /// Knowledge bases this run's crawl covered; only their unseen pages
    /// count as missed when pruning.
    covered: Mutex<HashSet<String>>,
    /// Knowledge bases an explicit `reconcile` lists, with the listing
    /// overriding the store.
    forced: Mutex<HashSet<String>>,
    /// Dry run only: what the run saw, which the store does not record.
    dry_seen: Mutex<HashSet<String>>,
    /// Dry run only: pages that answered 404 or 410.
    dry_gone: Mutex<HashSet<String>>,
}

/// A resolved knowledge base.
pub(crate) struct KbHandle {
    name: String,
    dataset_id: String,
    technique: IndexingTechnique,
    doc_form: DocForm,
    /// Metadata field ids by name; replaced if Dify refuses a stale one.
    fields: Mutex<HashMap<String, String>>,
    /// One metadata flush at a time, so no batch is sent twice at once.
    flush: tokio::sync::Mutex<()>,
    /// Dry run on a knowledge base that does not exist yet.
    missing: bool,
    /// The reconciliation done this run, if any.
    reconciled: Mutex<Option<Reconciled>>,
    /// Dry run only: the documents this run listed, by name, since the
    /// store is not written.
    listed: Mutex<Option<HashMap<String, RemoteDocument>>>,
    /// The field ids were re-read this run after Dify refused one.
    fields_refreshed: AtomicBool,
}

/// A reconciliation of one knowledge base in this run.
#[derive(Debug, Clone)]
pub(crate) struct Reconciled {
    counts: ReconcileCounts,
    /// The listing overrode the store (explicit reconcile).
    overwrite: bool,
}

impl KbHandle {
    /// A handle with flat chunks and no fields yet.
    fn new(name: &str, dataset_id: String, technique: IndexingTechnique) -> KbHandle {
        KbHandle {
            name: name.to_string(),
            dataset_id,
            technique,
            doc_form: DocForm::TextModel,
            fields: Mutex::new(HashMap::new()),
            flush: tokio::sync::Mutex::new(()),
            missing: false,
            reconciled: Mutex::new(None),
            listed: Mutex::new(None),
            fields_refreshed: AtomicBool::new(false),
        }
    }

    fn with_fields(mut self, doc_form: DocForm, fields: HashMap<String, String>) -> KbHandle {
        self.doc_form = doc_form;
        self.fields = Mutex::new(fields);
        self
    }
}

/// The create-by-text route as the client names it in errors.
const CREATE_ROUTE: &str = "POST /datasets/{dataset_id}/document/create-by-text";

/// What to do with one page.
enum Plan {
    Unchanged,
    MetadataOnly,
    /// Disabled by pruning, content and metadata unchanged: enable only.
    Enable(String),
    /// A document listed by this run holds this content already.
    Adopt(String),
    /// A document an earlier run listed seems to hold this content: read it
    /// before adopting it.
    Confirm(RemoteDocument),
    Blocked(String),
    Write {
        document_id: Option<String>,
        enable_first: bool,
        /// The document is known not to be available: skip the update
        /// Dify would refuse and replace it by name.
        by_name: bool,
    },
}

/// The result of one write call.
enum Written {
    Done { document_id: String, batch: String, created: bool },
    Blocked(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and caches stay usable after a panic elsewhere; the worst
    // case is a miscount in the summary.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error with its sources, for the store and the report.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl DifySink {
    /// Validates the options, checks the API key with one read and starts a
    /// run in the store (a dry run records no run).
    ///
    /// # Errors
    /// [`SyncError::Unauthorized`] for a rejected key,
    /// [`SyncError::Unreachable`] when Dify does not answer, option and
    /// store errors.
    pub async fn connect(
        client: DifyClient,
        store: StateStore,
        options: DifySinkOptions,
    ) -> Result<DifySink, SyncError> {
        options.validate()?;
        if store.is_read_only() && !options.dry_run {
            return Err(SyncError::Options(
                "the state store was opened for a dry run; open it with StateStore::open to write"
                    .into(),
            ));
        }
        check_key(&client).await?;

        let run = if options.dry_run { store.next_run_id()? } else { store.begin_run()? };
        tracing::info!(run = run.0, dry_run = options.dry_run, "dify sink ready");
        let inner = Inner {
            writes: Semaphore::new(options.write_concurrency),
            client,
            store,
            options,
            run,
            kbs: Mutex::new(HashMap::new()),
            counters: Mutex::new(BTreeMap::new()),
            batches: Mutex::new(Vec::new()),
            covered: Mutex::new(HashSet::new()),
            forced: Mutex::new(HashSet::new()),
            dry_seen: Mutex::new(HashSet::new()),
            dry_gone: Mutex::new(HashSet::new()),
        };
        Ok(DifySink { inner: Arc::new(inner) })
    }

    /// The run this sink records into.
    pub fn run(&self) -> RunId {
        self.inner.run
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.inner.store
    }

    /// Brings one page into its knowledge base.
    ///
    /// # Errors
    /// Fatal errors ([`SyncError::is_fatal`]) stop the run; a
    /// [`SyncError::Page`] is already recorded in the store and counted.
    pub async fn submit(&self, page: &PageRecord) -> Result<SyncOutcome, SyncError> {
        self.inner.cover(&page.knowledge_base)?;
        self.inner.saw(&page.url);
        let kb = self.inner.kb(&page.knowledge_base).await?;
        let result = self.inner.sync_page(&kb, page).await;
        self.inner.count(&page.knowledge_base, &result);
        result
    }

    /// Records a 304 answer: the page is unchanged and costs no Dify call.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn not_modified(&self, url: &Url, kb: &str) -> Result<(), SyncError> {
        self.inner.cover(kb)?;
        self.inner.saw(url);
        if !self.inner.options.dry_run {
            self.inner.store.record_unchanged(url.as_str(), None, self.inner.run)?;
        }
        self.inner.count(kb, &Ok(SyncOutcome::Unchanged));
        Ok(())
    }

    /// Records a page that failed before reaching the sink (fetch,
    /// extraction); it counts as seen, so it is not pruned meanwhile.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn record_failure(&self, url: &Url, stage: &str, error: &str) -> Result<(), SyncError> {
        self.inner.saw(url);
        if !self.inner.options.dry_run {
            self.inner.store.record_failure(url, stage, error, self.inner.run)?;
        }
        Ok(())
    }

    /// Records that the site answered 404 or 410 for a page: its document is
    /// pruned at [`DifySink::finish`] when pruning is on.
    ///
    /// # Errors
    /// [`SyncError::State`].
    pub fn page_gone(&self, url: &Url) -> Result<(), SyncError> {
        if self.inner.options.dry_run {
            lock(&self.inner.dry_gone).insert(url.to_string());
        } else {
            self.inner.store.record_gone(url, self.inner.run)?;
        }
        Ok(())
    }

    /// Resends every page whose content is stored but not synced (planned,
    /// or failed after extraction), without crawling.
    ///
    /// # Errors
    /// Fatal errors only; page failures are counted in the summary.
    pub async fn retry_pending(&self) -> Result<RetrySummary, SyncError> {
        use futures_util::StreamExt;

        let pages = self.inner.store.pending_pages()?;
        tracing::info!(pages = pages.len(), "retrying pending pages");
        let mut summary = RetrySummary { attempted: pages.len(), ..RetrySummary::default() };
        let mut results = futures_util::stream::iter(pages)
            .map(|pending| async move { self.submit(&pending.page).await })
            .buffer_unordered(self.inner.options.write_concurrency);
        while let Some(result) = results.next().await {
            match result {
                Ok(outcome) => summary.add(&outcome),
                Err(error) if error.is_fatal() => return Err(error),
                Err(_) => summary.failed += 1,
            }
        }
        Ok(summary)
    }
}

/// One cheap read so a wrong key or base URL fails before any work.
async fn check_key(client: &DifyClient) -> Result<(), SyncError> {
    let query = ListDatasetsQuery { page: Some(1), limit: Some(1), ..ListDatasetsQuery::default() };
    let error = match client.list_datasets(&query).await {
        Ok(_) => return Ok(()),
        Err(error) => error::classify(error)?,
    };
    match error.status() {
        // Listing asks Dify's plugin service for models and can fail while
        // the key itself was accepted; 403 is a plan or permission matter.
        Some(400 | 403) => {
            tracing::warn!(error = %error_chain(&error), "dataset listing failed; key accepted");
            Ok(())
        }
        Some(404) => Err(SyncError::NotDify(Box::new(error))),
        _ => Err(SyncError::Unreachable(Box::new(error))),
    }
}

impl Inner {
    /// Notes that this run's crawl covers a knowledge base.
    fn cover(&self, name: &str) -> Result<(), SyncError> {
        let first = lock(&self.covered).insert(name.to_string());
        if first && !self.options.dry_run {
            self.store.record_run_knowledge_base(self.run, name)?;
        }
        Ok(())
    }

    /// Dry run: remembers a page the run saw (the store does that in a real
    /// run), for planning the prune.
    fn saw(&self, url: &Url) {
        if self.options.dry_run {
            lock(&self.dry_seen).insert(url.to_string());
        }
    }

    /// The knowledge base handle, resolving it on first use.
    async fn kb(&self, name: &str) -> Result<Arc<KbHandle>, SyncError> {
        let cell = lock(&self.kbs).entry(name.to_string()).or_default().clone();
        let handle =
            cell.get_or_try_init(|| async { self.load_kb(name).await.map(Arc::new) }).await?;
        Ok(handle.clone())
    }

    /// Resolves a knowledge base, from the store when it knows the dataset
    /// and its fields, and lists its documents unless the store already
    /// holds a complete listing (see "Lost state" above).
    async fn load_kb(&self, name: &str) -> Result<KbHandle, SyncError> {
        let forced = lock(&self.forced).contains(name);
        if let Some(handle) = self.known_kb(name)? {
            if !forced && self.store.is_reconciled(&handle.dataset_id)? {
                tracing::debug!(kb = name, dataset = %handle.dataset_id, "knowledge base known");
                return Ok(handle);
            }
            match self.reconcile_dataset(&handle, forced).await {
                Ok(_) => return Ok(handle),
                // The dataset was deleted in Dify: forget it and resolve the
                // name afresh.
                Err(SyncError::KnowledgeBase { ref source, .. }) if source.is_not_found() => {
                    tracing::info!(kb = name, "stored dataset no longer exists in dify");
                    if !self.options.dry_run {
                        self.store.forget_dataset(name)?;
                    }
                }
                Err(error) => return Err(error),
            }
        }

        let Some(dataset) = self.fetch_dataset(name).await? else {
            let mut handle = KbHandle::new(name, String::new(), self.options.indexing_technique);
            handle.missing = true;
            return Ok(handle);
        };

        let technique = match dataset.indexing_technique {
            Some(technique @ (IndexingTechnique::Economy | IndexingTechnique::HighQuality)) => {
                technique
            }
            _ => self.options.indexing_technique,
        };
        let doc_form = self.options.chunking.doc_form_for(technique, dataset.doc_form)?;
        let existing: HashMap<String, String> = dataset
            .doc_metadata
            .iter()
            .filter(|field| field.id != "built-in")
            .map(|field| (field.name.clone(), field.id.clone()))
            .collect();
        let fields = self.ensure_fields(name, &dataset.id, existing).await?;

        let handle =
            KbHandle::new(name, dataset.id.clone(), technique).with_fields(doc_form, fields);
        if !self.options.dry_run {
            self.remember_kb(&handle)?;
        }
        tracing::info!(kb = name, dataset = %handle.dataset_id, "knowledge base ready");

        let has_documents = dataset.document_count.or(dataset.total_documents).unwrap_or(0) > 0;
        let listed_before = self.store.is_reconciled(&handle.dataset_id)?;
        if forced || (has_documents && !listed_before) {
            tracing::info!(kb = name, "listing the documents of the knowledge base");
            self.reconcile_dataset(&handle, forced).await?;
        } else if !listed_before && !self.options.dry_run {
            // Empty (typically just created): there is nothing to list.
            self.store.mark_reconciled(&handle.dataset_id)?;
        }
        Ok(handle)
    }

    /// The dataset, created when missing; in a dry run only looked up
    /// (`None` when it does not exist yet).
    async fn fetch_dataset(&self, name: &str) -> Result<Option<Dataset>, SyncError> {
        let found = if self.options.dry_run {
            self.client.find_dataset(name).await
        } else {
            self.client.ensure_dataset(name, &self.dataset_request(name)).await.map(Some)
        };
        found.map_err(|error| SyncError::knowledge_base(name, error))
    }

    /// The handle from the store alone, when every field id is known.
    fn known_kb(&self, name: &str) -> Result<Option<KbHandle>, SyncError> {
        let Some(record) = self.store.dataset(name)? else { return Ok(None) };
        let fields: HashMap<String, String> = self
            .store
            .metadata_fields(&record.dataset_id)?
            .into_iter()
            .map(|(field, (id, _))| (field, id))
            .collect();
        if !METADATA_FIELDS.iter().all(|(field, _)| fields.contains_key(*field)) {
            return Ok(None);
        }

        let technique = record
            .indexing_technique
            .as_deref()
            .and_then(|t| serde_json::from_value(serde_json::Value::from(t)).ok())
            .unwrap_or(self.options.indexing_technique);
        let stored_form =
            record.doc_form.as_deref().and_then(|f| serde_json::from_value(f.into()).ok());
        let doc_form = self.options.chunking.doc_form_for(technique, stored_form)?;
        let handle = KbHandle::new(name, record.dataset_id, technique);
        Ok(Some(handle.with_fields(doc_form, fields)))
    }

    fn dataset_request(&self, name: &str) -> CreateDatasetRequest {
        CreateDatasetRequest {
            description: self.options.description.clone(),
            indexing_technique: Some(self.options.indexing_technique),
            permission: Some(self.options.permission),
            ..CreateDatasetRequest::new(name)
        }
    }

    /// Creates the metadata fields the dataset lacks, concurrently within
    /// the write limit: they are independent, and a fresh dataset needs all
    /// nine.
    async fn ensure_fields(
        &self,
        kb: &str,
        dataset_id: &str,
        mut fields: HashMap<String, String>,
    ) -> Result<HashMap<String, String>, SyncError> {
        if self.options.dry_run {
            return Ok(fields);
        }
        let missing = METADATA_FIELDS.into_iter().filter(|(name, _)| !fields.contains_key(*name));
        let created = futures_util::future::join_all(missing.map(|(name, kind)| async move {
            let _permit = self.writes.acquire().await;
            let created = match self.client.create_metadata_field(dataset_id, name, kind).await {
                Err(error) if error.is_duplicate_name() => {
                    self.client.ensure_metadata_field(dataset_id, name, kind).await
                }
                other => other,
            };
            created.map(|field| (name, field.id))
        }))
        .await;

        for result in created {
            let (name, id) = result.map_err(|error| SyncError::knowledge_base(kb, error))?;
            fields.insert(name.to_string(), id);
        }
        Ok(fields)
    }

    fn remember_kb(&self, handle: &KbHandle) -> Result<(), SyncError> {
        let record = DatasetRecord {
            dataset_id: handle.dataset_id.clone(),
            indexing_technique: as_text(serde_json::to_value(handle.technique)),
            doc_form: as_text(serde_json::to_value(handle.doc_form)),
        };
        self.store.save_dataset(&handle.name, &record)?;
        self.remember_fields(handle)
    }

    fn remember_fields(&self, handle: &KbHandle) -> Result<(), SyncError> {
        let fields = lock(&handle.fields).clone();
        for (name, kind) in METADATA_FIELDS {
            if let Some(id) = fields.get(name) {
                let kind = as_text(serde_json::to_value(kind)).unwrap_or_default();
                self.store.save_metadata_field(&handle.dataset_id, name, id, &kind)?;
            }
        }
        Ok(())
    }

    async fn sync_page(&self, kb: &KbHandle, page: &PageRecord) -> Result<SyncOutcome, SyncError> {
        let name = document_name(&page.url);
        let fingerprint = metadata::fingerprint(
            page.title.as_deref(),
            page.description.as_deref(),
            page.language.as_deref(),
        );
        let row = self.store.page(page.url.as_str())?;
        let mut plan = self.plan(kb, row.as_ref(), page, &name, &fingerprint)?;
        if let Plan::Confirm(doc) = plan {
            plan = self.confirm(kb, page, &name, &fingerprint, doc).await?;
        }

        if self.options.dry_run {
            return Ok(SyncOutcome::DryRun(planned_action(&plan)));
        }
        let intent = Intent {
            page,
            dataset_id: &kb.dataset_id,
            document_name: &name,
            metadata_hash: &fingerprint,
            run: self.run,
        };
        match plan {
            Plan::Unchanged => {
                self.record_unchanged(page)?;
                Ok(SyncOutcome::Unchanged)
            }
            Plan::MetadataOnly => {
                let values = metadata_json(page);
                let url = page.url.as_str();
                self.store.record_metadata_change(url, &fingerprint, &values, self.run)?;
                self.store.record_fetch(
                    url,
                    &fetch_validators(page),
                    page.sitemap_lastmod.as_deref(),
                )?;
                self.flush_metadata(kb, true).await?;
                Ok(SyncOutcome::MetadataUpdated)
            }
            Plan::Enable(document_id) => self.enable(kb, page, &intent, document_id).await,
            Plan::Adopt(document_id) => {
                self.store.record_adopted(&intent, &document_id)?;
                self.clean_moved(page.url.as_str()).await?;
                Ok(SyncOutcome::Unchanged)
            }
            Plan::Blocked(reason) => {
                self.store.record_intent(&intent)?;
                self.store.record_failure(&page.url, "write", &reason, self.run)?;
                Ok(SyncOutcome::Blocked { reason })
            }
            // `confirm` never answers with another confirmation.
            Plan::Confirm(doc) => {
                self.write(kb, page, &intent, Some(doc.document_id), false, false).await
            }
            Plan::Write { document_id, enable_first, by_name } => {
                self.write(kb, page, &intent, document_id, enable_first, by_name).await
            }
        }
    }

    fn record_unchanged(&self, page: &PageRecord) -> Result<(), SyncError> {
        let validators = fetch_validators(page);
        let fresh = Some((&validators, page.sitemap_lastmod.as_deref()));
        self.store.record_unchanged(page.url.as_str(), fresh, self.run)?;
        Ok(())
    }

    /// Decides what a page needs from what the store and reconciliation
    /// know; no Dify call.
    fn plan(
        &self,
        kb: &KbHandle,
        row: Option<&PageState>,
        page: &PageRecord,
        name: &str,
        fingerprint: &str,
    ) -> Result<Plan, SyncError> {
        if kb.missing {
            return Ok(Plan::Write { document_id: None, enable_first: false, by_name: false });
        }
        // A dry run keeps its listing in memory; an explicit reconcile's
        // listing overrides what the store says.
        let listed = lock(&kb.listed).as_ref().map(|docs| docs.get(name).cloned());
        let overrides = lock(&kb.reconciled).as_ref().is_some_and(|r| r.overwrite);
        let same_dataset = row.is_some_and(|r| r.dataset_id.as_deref() == Some(&kb.dataset_id));
        if let Some(row) = row.filter(|_| same_dataset)
            && let Some(document_id) = &row.document_id
        {
            let contradicted = overrides
                && listed
                    .as_ref()
                    .is_some_and(|doc| doc.as_ref().is_none_or(|d| &d.document_id != document_id));
            if !contradicted {
                return Ok(self.plan_known(kb, row, document_id, page, fingerprint));
            }
        }

        let remote = match listed {
            Some(doc) => doc,
            None => self.store.remote_document(&kb.dataset_id, name)?,
        };
        Ok(match remote {
            Some(doc) if is_blocked_status(doc.display_status.as_deref()) => {
                Plan::Blocked(blocked_reason(doc.display_status.as_deref().unwrap_or("disabled")))
            }
            Some(doc)
                if doc.content_hash.as_deref() == Some(page.content_hash.as_str())
                    && doc.metadata_hash.as_deref() == Some(fingerprint) =>
            {
                if doc.listed_run == Some(self.run) {
                    Plan::Adopt(doc.document_id)
                } else {
                    Plan::Confirm(doc)
                }
            }
            Some(doc) => Plan::Write {
                document_id: Some(doc.document_id),
                enable_first: false,
                by_name: false,
            },
            None => Plan::Write { document_id: None, enable_first: false, by_name: false },
        })
    }

    /// The plan for a page whose document in this dataset the store knows.
    fn plan_known(
        &self,
        kb: &KbHandle,
        row: &PageState,
        document_id: &str,
        page: &PageRecord,
        fingerprint: &str,
    ) -> Plan {
        // The hash is recorded only once Dify holds that content, so a
        // later fetch failure does not force a rewrite; a failed indexing
        // does.
        let indexing_failed =
            row.stage == Stage::Failed && row.failed_stage.as_deref() == Some("indexing");
        let content_there =
            !indexing_failed && row.content_hash.as_deref() == Some(page.content_hash.as_str());
        let metadata_there = row.metadata_hash.as_deref() == Some(fingerprint);
        let document_id = document_id.to_string();
        if row.disabled_by_sync {
            return if content_there && metadata_there {
                Plan::Enable(document_id)
            } else {
                Plan::Write { document_id: Some(document_id), enable_first: true, by_name: false }
            };
        }
        match (content_there, metadata_there) {
            (true, true) => Plan::Unchanged,
            (true, false) => Plan::MetadataOnly,
            (false, _) => Plan::Write {
                document_id: Some(document_id),
                enable_first: false,
                by_name: self.known_unavailable(kb, row),
            },
        }
    }

    /// Whether the store knows the page's document cannot be `available`:
    /// its indexing failed, or this run wrote it and has not seen indexing
    /// finish. Neither can have been disabled since (Dify refuses to
    /// disable a document that is not completed), so a same-name create
    /// replaces it safely.
    fn known_unavailable(&self, kb: &KbHandle, row: &PageState) -> bool {
        match row.indexing_status.as_deref() {
            Some("error") => true,
            Some("completed") => false,
            _ => row.indexing_batch.as_ref().is_some_and(|batch| {
                lock(&self.batches).iter().any(|(d, b)| d == &kb.dataset_id && b == batch)
            }),
        }
    }

    /// Reads a document an earlier run's listing found before adopting a
    /// page onto it: it may have been deleted or rewritten since.
    async fn confirm(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        name: &str,
        fingerprint: &str,
        doc: RemoteDocument,
    ) -> Result<Plan, SyncError> {
        let found =
            self.client.get_document(&kb.dataset_id, &doc.document_id, MetadataMode::Only).await;
        let by_id =
            |id: String| Plan::Write { document_id: Some(id), enable_first: false, by_name: false };
        Ok(match found {
            Ok(found) => {
                let hash = metadata::remote_string(&found.doc_metadata, "content_hash");
                let same_metadata =
                    metadata::remote_fingerprint(&found.doc_metadata) == fingerprint;
                if hash == Some(page.content_hash.as_str()) && same_metadata {
                    Plan::Adopt(doc.document_id)
                } else {
                    by_id(doc.document_id)
                }
            }
            Err(error) if error.is_not_found() => {
                tracing::debug!(url = %page.url, "a reconciled document is gone; creating it");
                if !self.options.dry_run {
                    self.store.forget_remote_document(&kb.dataset_id, name)?;
                }
                Plan::Write { document_id: None, enable_first: false, by_name: false }
            }
            Err(error) => {
                // An update by id checks the document again.
                let error = error::classify(error)?;
                tracing::debug!(url = %page.url, error = %error_chain(&error), "cannot read document");
                by_id(doc.document_id)
            }
        })
    }

    /// Enables the document pruning disabled, for a page that came back
    /// unchanged. Dify skips unknown ids silently, so the document is read
    /// first (free of the rate limit); a deleted one is created again.
    async fn enable(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        intent: &Intent<'_>,
        document_id: String,
    ) -> Result<SyncOutcome, SyncError> {
        let url = page.url.as_str();
        let found =
            self.client.get_document(&kb.dataset_id, &document_id, MetadataMode::Without).await;
        match found {
            Ok(_) => {}
            Err(error) if error.is_not_found() => {
                tracing::info!(url, "the document disabled by pruning is gone; creating it again");
                return self.write(kb, page, intent, None, false, false).await;
            }
            Err(error) => {
                self.store.record_failure(&page.url, "write", &error_chain(&error), self.run)?;
                return Err(SyncError::page(url, "write", error));
            }
        }
        let enabled = {
            let _permit = self.writes.acquire().await;
            let ids = [document_id];
            self.client.set_documents_status(&kb.dataset_id, DocumentAction::Enable, &ids).await
        };
        match enabled {
            Ok(_) => {
                let validators = fetch_validators(page);
                let lastmod = page.sitemap_lastmod.as_deref();
                self.store.record_enabled(url, &validators, lastmod, self.run)?;
                tracing::debug!(url, "enabled the document pruning had disabled");
                Ok(SyncOutcome::Updated)
            }
            Err(error) => {
                self.store.record_failure(&page.url, "write", &error_chain(&error), self.run)?;
                Err(SyncError::page(url, "write", error))
            }
        }
    }

    async fn write(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        intent: &Intent<'_>,
        document_id: Option<String>,
        enable_first: bool,
        by_name: bool,
    ) -> Result<SyncOutcome, SyncError> {
        let url = page.url.as_str();
        // Also records the document a moved page leaves behind, deleted
        // below once the new one exists.
        self.store.record_intent(intent)?;

        let written = {
            let _permit = self.writes.acquire().await;
            let name = intent.document_name;
            self.write_call(kb, page, name, document_id, enable_first, by_name).await
        };
        match written {
            Ok(Written::Done { document_id, batch, created }) => {
                self.store.record_written(url, &document_id, &batch, &metadata_json(page))?;
                lock(&self.batches).push((kb.dataset_id.clone(), batch));
                tracing::debug!(url, document = %document_id, created, "wrote document");
                self.clean_moved(url).await?;
                self.flush_metadata(kb, true).await?;
                Ok(if created { SyncOutcome::Created } else { SyncOutcome::Updated })
            }
            Ok(Written::Blocked(reason)) => {
                tracing::warn!(url, reason = %reason, "document left unchanged");
                self.store.record_failure(&page.url, "write", &reason, self.run)?;
                Ok(SyncOutcome::Blocked { reason })
            }
            Err(error) if error.is_not_found() && error.endpoint() == Some(CREATE_ROUTE) => {
                // Only the dataset can be missing on a create: it was deleted
                // in Dify. Forgetting it makes the next run create it afresh.
                self.store.forget_dataset(&kb.name)?;
                Err(SyncError::KnowledgeBaseGone { name: kb.name.clone() })
            }
            Err(error) => {
                self.store.record_failure(&page.url, "write", &error_chain(&error), self.run)?;
                Err(SyncError::page(url, "write", error))
            }
        }
    }

    /// Deletes the documents a page left in other knowledge bases when
    /// routing moved it; called once its document in the new one exists.
    /// A failed delete stays recorded for the end of the run (or the next).
    pub(crate) async fn clean_moved(&self, url: &str) -> Result<(), SyncError> {
        for (dataset_id, document_id) in self.store.moved_documents_of(url)? {
            self.delete_left_behind(url, &dataset_id, &document_id).await?;
        }
        Ok(())
    }

    pub(crate) async fn delete_left_behind(
        &self,
        url: &str,
        dataset_id: &str,
        document_id: &str,
    ) -> Result<(), SyncError> {
        let deleted = {
            let _permit = self.writes.acquire().await;
            self.client.delete_document(dataset_id, document_id).await
        };
        match deleted {
            Ok(()) => {}
            // Gone already, or its whole dataset is.
            Err(error) if error.is_not_found() => {}
            Err(error) => {
                let error = error::classify(error)?;
                tracing::warn!(url, document = document_id, error = %error_chain(&error),
                    "could not delete the document a moved page left behind; trying again later");
                return Ok(());
            }
        }
        tracing::debug!(url, document = document_id, "deleted the document a moved page left");
        self.store.drop_moved_document(dataset_id, document_id)?;
        Ok(())
    }

    async fn write_call(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        name: &str,
        document_id: Option<String>,
        enable_first: bool,
        by_name: bool,
    ) -> Result<Written, dify_client::Error> {
        let Some(document_id) = document_id else {
            return self.create(kb, page, name).await;
        };
        if by_name {
            return Ok(replaced(self.create(kb, page, name).await?));
        }
        if enable_first {
            let ids = [document_id.clone()];
            self.client.set_documents_status(&kb.dataset_id, DocumentAction::Enable, &ids).await?;
        }

        let plan = self.options.chunking.plan(kb.doc_form, page.word_count);
        let request = UpdateDocumentByTextRequest {
            process_rule: Some(plan.process_rule),
            doc_form: Some(plan.doc_form),
            ..UpdateDocumentByTextRequest::text(name, page.markdown.clone())
        };
        match self.client.update_document_by_text(&kb.dataset_id, &document_id, &request).await {
            Ok(done) => Ok(Written::Done {
                document_id: done.document.id,
                batch: done.batch,
                created: false,
            }),
            Err(error) if error.is_not_found() => self.create(kb, page, name).await,
            Err(error) if error.is_document_not_available() => {
                self.write_unavailable(kb, page, name, &document_id).await
            }
            Err(error) => Err(error),
        }
    }

    /// Update refused: find out why before choosing between a same-name
    /// create and leaving the document alone.
    async fn write_unavailable(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        name: &str,
        document_id: &str,
    ) -> Result<Written, dify_client::Error> {
        let document = match self
            .client
            .get_document(&kb.dataset_id, document_id, MetadataMode::Without)
            .await
        {
            Ok(document) => document,
            Err(error) if error.is_not_found() => return self.create(kb, page, name).await,
            Err(error) => return Err(error),
        };
        let status = document.display_status;
        if document.enabled == Some(false)
            || document.archived == Some(true)
            || matches!(status, Some(DisplayStatus::Disabled | DisplayStatus::Archived))
        {
            let label = if document.archived == Some(true) { "archived" } else { "disabled" };
            return Ok(Written::Blocked(blocked_reason(label)));
        }
        if document.name != name {
            return Ok(Written::Blocked(format!(
                "document was renamed in dify to {:?}; left unchanged to avoid a duplicate",
                document.name
            )));
        }
        Ok(replaced(self.create(kb, page, name).await?))
    }

    async fn create(
        &self,
        kb: &KbHandle,
        page: &PageRecord,
        name: &str,
    ) -> Result<Written, dify_client::Error> {
        let plan = self.options.chunking.plan(kb.doc_form, page.word_count);
        let request = CreateDocumentByTextRequest {
            doc_form: Some(plan.doc_form),
            process_rule: Some(plan.process_rule),
            ..CreateDocumentByTextRequest::new(name, page.markdown.clone(), kb.technique)
        };
        let done = self.client.create_document_by_text(&kb.dataset_id, &request).await?;
        Ok(Written::Done { document_id: done.document.id, batch: done.batch, created: true })
    }

    fn count(&self, kb: &str, result: &Result<SyncOutcome, SyncError>) {
        let mut counters = lock(&self.counters);
        let summary = counters.entry(kb.to_string()).or_default();
        match result {
            Ok(outcome) => summary.add(outcome),
            Err(error) if !error.is_fatal() => summary.failed += 1,
            Err(_) => {}
        }
    }

    /// Lists a page whose write succeeded but which is not synced.
    pub(crate) fn unsynced(&self, kb: &str, url: &str, stage: UnsyncedStage, reason: &str) {
        let page = UnsyncedPage { url: url.to_string(), stage, reason: reason.to_string() };
        lock(&self.counters).entry(kb.to_string()).or_default().unsynced.push(page);
    }
}

/// A same-name create that replaced the page's document in place.
fn replaced(written: Written) -> Written {
    match written {
        Written::Done { document_id, batch, .. } => {
            Written::Done { document_id, batch, created: false }
        }
        blocked => blocked,
    }
}

fn as_text(value: serde_json::Result<serde_json::Value>) -> Option<String> {
    value.ok().and_then(|v| v.as_str().map(str::to_string))
}

/// What fetching the page told for the next run's conditional request.
fn fetch_validators(page: &PageRecord) -> Validators {
    Validators {
        etag: page.etag.clone(),
        last_modified: page.last_modified.clone(),
        links: page.links.clone(),
    }
}

/// The page's metadata values as stored in the queue.
fn metadata_json(page: &PageRecord) -> String {
    serde_json::Value::Object(metadata::values(page)).to_string()
}

fn is_blocked_status(status: Option<&str>) -> bool {
    matches!(status, Some("disabled" | "archived"))
}

fn blocked_reason(status: &str) -> String {
    format!(
        "document is {status} in dify; left unchanged (enable it, or delete it, to sync this page again)"
    )
}

fn planned_action(plan: &Plan) -> PlannedAction {
    match plan {
        Plan::Unchanged | Plan::Adopt(_) | Plan::Confirm(_) => PlannedAction::Unchanged,
        Plan::MetadataOnly => PlannedAction::UpdateMetadata,
        Plan::Blocked(_) => PlannedAction::Blocked,
        Plan::Enable(_) | Plan::Write { document_id: Some(_), .. } => PlannedAction::Update,
        Plan::Write { document_id: None, .. } => PlannedAction::Create,
    }
}
