//! Document endpoints, including the stream over all pages.

use std::collections::VecDeque;
use std::pin::Pin;

use futures_util::Stream;

use crate::client::DifyClient;
use crate::endpoints::{
    CREATE_BY_FILE, CREATE_BY_TEXT, DELETE_DOCUMENT, DOCUMENT_STATUS, GET_DOCUMENT,
    INDEXING_STATUS, LIST_DOCUMENTS, UPDATE_BY_FILE, UPDATE_BY_TEXT,
};
use crate::error::{Error, Result};
use crate::transport::Call;
use crate::types::{
    CreateDocumentByTextRequest, Document, DocumentAction, DocumentSettings, DocumentWithBatch,
    FileUpload, IndexingStatusResponse, ListDocumentsQuery, MetadataMode, OperationResult, Page,
    UpdateDocumentByTextRequest,
};

/// Largest page the server serves; larger limits are cut silently.
const MAX_PAGE: u32 = 100;

/// A stream of every document of a dataset, fetched page by page.
pub type DocumentStream = Pin<Box<dyn Stream<Item = Result<Document>> + Send>>;

impl DifyClient {
    /// Creates a document from text; an enabled document with the same name
    /// is replaced in place (same id, new batch), which makes a retry after
    /// a lost reply safe.
    ///
    /// # Errors
    ///
    /// 400 for invalid settings (always send `indexing_technique`, and a
    /// `process_rule` for a dataset's first document), 404 for an unknown
    /// dataset.
    pub async fn create_document_by_text(
        &self,
        dataset_id: &str,
        request: &CreateDocumentByTextRequest,
    ) -> Result<DocumentWithBatch> {
        let action = format!("creating document {:?} in dataset {dataset_id}", request.name);
        let url = self.url(&action, &["datasets", dataset_id, "document", "create-by-text"])?;
        self.json(Call::new(CREATE_BY_TEXT, url, action).json(request)?).await
    }

    /// Creates a document from a file (multipart `file` + `data`).
    ///
    /// # Errors
    ///
    /// 400 when no process rule is known, 413/415 for the file, 404 for an
    /// unknown dataset.
    pub async fn create_document_by_file(
        &self,
        dataset_id: &str,
        file: FileUpload,
        settings: &DocumentSettings,
    ) -> Result<DocumentWithBatch> {
        let action =
            format!("creating document from file {:?} in dataset {dataset_id}", file.file_name);
        let data = settings_json(settings, &action)?;
        let url = self.url(&action, &["datasets", dataset_id, "document", "create-by-file"])?;
        self.json(Call::new(CREATE_BY_FILE, url, action).multipart(Some(file), Some(data))).await
    }

    /// Replaces a document's text (and/or process rule).
    ///
    /// # Errors
    ///
    /// 400 "Document is not available"
    /// ([`Error::is_document_not_available`]) while the document is not
    /// `available`; 404 for an unknown document.
    pub async fn update_document_by_text(
        &self,
        dataset_id: &str,
        document_id: &str,
        request: &UpdateDocumentByTextRequest,
    ) -> Result<DocumentWithBatch> {
        let action = format!("updating document {document_id} in dataset {dataset_id}");
        let segments = ["datasets", dataset_id, "documents", document_id, "update-by-text"];
        let url = self.url(&action, &segments)?;
        self.json(Call::new(UPDATE_BY_TEXT, url, action).json(request)?).await
    }

    /// Replaces a document's file and/or settings (multipart). Sent to the
    /// `POST …/update-by-file` alias, which every server version routes;
    /// the canonical `PATCH` form is missing on servers up to 1.13.
    ///
    /// # Errors
    ///
    /// As [`update_document_by_text`](Self::update_document_by_text), plus
    /// 413/415 for the file.
    pub async fn update_document_by_file(
        &self,
        dataset_id: &str,
        document_id: &str,
        file: Option<FileUpload>,
        settings: &DocumentSettings,
    ) -> Result<DocumentWithBatch> {
        let action = format!("updating document {document_id} from a file in dataset {dataset_id}");
        let data = settings_json(settings, &action)?;
        let segments = ["datasets", dataset_id, "documents", document_id, "update-by-file"];
        let url = self.url(&action, &segments)?;
        self.json(Call::new(UPDATE_BY_FILE, url, action).multipart(file, Some(data))).await
    }

    /// Lists one page of documents.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn list_documents(
        &self,
        dataset_id: &str,
        query: &ListDocumentsQuery,
    ) -> Result<Page<Document>> {
        let action = format!("listing documents of dataset {dataset_id}");
        let mut url = self.url(&action, &["datasets", dataset_id, "documents"])?;
        url.query_pairs_mut().extend_pairs(query.pairs());
        self.json(Call::new(LIST_DOCUMENTS, url, action)).await
    }

    /// Streams every document matching `query`, page by page (the page size
    /// is capped at 100 and `page` is ignored). Stops at an empty page or
    /// when `page * limit >= total`; `has_more` is not trusted (see
    /// [`Page::is_last`]). An error ends the stream after being yielded.
    pub fn documents(&self, dataset_id: &str, query: ListDocumentsQuery) -> DocumentStream {
        let limit = query.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let state = Pager {
            client: self.clone(),
            dataset_id: dataset_id.to_owned(),
            query: ListDocumentsQuery { limit: Some(limit), ..query },
            next_page: Some(1),
            buffer: VecDeque::new(),
        };
        Box::pin(futures_util::stream::unfold(state, Pager::next))
    }

    /// Reads one document; `mode` picks all fields, only the metadata, or
    /// all but the metadata.
    ///
    /// # Errors
    ///
    /// 404 for an unknown document (also one of another dataset).
    pub async fn get_document(
        &self,
        dataset_id: &str,
        document_id: &str,
        mode: MetadataMode,
    ) -> Result<Document> {
        let action = format!("reading document {document_id} in dataset {dataset_id}");
        let mut url = self.url(&action, &["datasets", dataset_id, "documents", document_id])?;
        url.query_pairs_mut().append_pair("metadata", mode.as_str());
        self.json(Call::new(GET_DOCUMENT, url, action)).await
    }

    /// Deletes a document. A 404 after an attempt whose reply was lost
    /// counts as success.
    ///
    /// # Errors
    ///
    /// 404 when missing, 403 when archived, 400 while indexing.
    pub async fn delete_document(&self, dataset_id: &str, document_id: &str) -> Result<()> {
        let action = format!("deleting document {document_id} in dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "documents", document_id])?;
        self.unit(Call::new(DELETE_DOCUMENT, url, action)).await
    }

    /// Indexing progress of the documents of one batch.
    ///
    /// # Errors
    ///
    /// 404 for an unknown batch, or one superseded by a same-name create.
    pub async fn indexing_status(
        &self,
        dataset_id: &str,
        batch: &str,
    ) -> Result<IndexingStatusResponse> {
        let action = format!("reading indexing status of batch {batch} in dataset {dataset_id}");
        let segments = ["datasets", dataset_id, "documents", batch, "indexing-status"];
        let url = self.url(&action, &segments)?;
        self.json(Call::new(INDEXING_STATUS, url, action)).await
    }

    /// Enables, disables, archives or un-archives many documents; unknown
    /// ids are skipped by the server.
    ///
    /// Not repeated after a lost reply: the change starts a background task
    /// during which a second copy answers 400 "is being indexed", so the
    /// call fails with [`Error::Transport`] (`maybe_sent`) instead; read the
    /// documents to learn whether it applied.
    ///
    /// # Errors
    ///
    /// 400 `invalid_action` when a document is indexing or not completed.
    pub async fn set_documents_status(
        &self,
        dataset_id: &str,
        action: DocumentAction,
        document_ids: &[String],
    ) -> Result<OperationResult> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            document_ids: &'a [String],
        }
        let what = format!(
            "setting {} documents to {} in dataset {dataset_id}",
            document_ids.len(),
            action.as_str()
        );
        let segments = ["datasets", dataset_id, "documents", "status", action.as_str()];
        let url = self.url(&what, &segments)?;
        self.json(Call::new(DOCUMENT_STATUS, url, what).json(&Body { document_ids })?).await
    }
}

fn settings_json(settings: &DocumentSettings, action: &str) -> Result<String> {
    serde_json::to_string(settings).map_err(|source| Error::InvalidInput {
        action: action.to_owned(),
        reason: format!("cannot encode the document settings: {source}"),
    })
}

/// State of [`DifyClient::documents`].
struct Pager {
    client: DifyClient,
    dataset_id: String,
    query: ListDocumentsQuery,
    /// `None` once the last page was read or an error was yielded.
    next_page: Option<u32>,
    buffer: VecDeque<Document>,
}

impl Pager {
    async fn next(mut self) -> Option<(Result<Document>, Self)> {
        loop {
            if let Some(document) = self.buffer.pop_front() {
                return Some((Ok(document), self));
            }
            let page = self.next_page?;
            let query = ListDocumentsQuery { page: Some(page), ..self.query.clone() };
            match self.client.list_documents(&self.dataset_id, &query).await {
                Ok(result) => {
                    let requested = self.query.limit.unwrap_or(MAX_PAGE);
                    self.next_page =
                        if result.is_last(requested) { None } else { page.checked_add(1) };
                    self.buffer.extend(result.data);
                }
                Err(error) => {
                    self.next_page = None;
                    return Some((Err(error), self));
                }
            }
        }
    }
}
