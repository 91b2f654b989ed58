//! The sink's error type and the line between fatal and per-page failures.
//!
//! A run stops on errors that would fail every later page the same way (a
//! rejected key, Dify unreachable, a bad configuration, a broken state
//! store). Everything else concerns one page: it is recorded in the store
//! with its stage, counted, and the run goes on (exit code 2 at the end).

use crate::chunking::ChunkingError;
use crate::state::StateError;

/// Errors of the Dify sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Dify refused the API key.
    #[error("dify rejected the api key")]
    Unauthorized(#[source] Box<dify_client::Error>),
    /// Dify could not be reached, or the circuit breaker gave up on it.
    #[error("dify is unreachable")]
    Unreachable(#[source] Box<dify_client::Error>),
    /// The base URL answers, but not with Dify's knowledge API.
    #[error("no dify knowledge api at the base url (it should end in /v1)")]
    NotDify(#[source] Box<dify_client::Error>),
    /// The chunking settings break a Dify limit.
    #[error("invalid chunking configuration")]
    Chunking(#[from] ChunkingError),
    /// Another option is out of range.
    #[error("invalid sync option: {0}")]
    Options(String),
    /// A knowledge base could not be found or created.
    #[error("cannot prepare knowledge base {name:?}")]
    KnowledgeBase {
        /// The knowledge base name.
        name: String,
        /// What Dify said.
        #[source]
        source: Box<dify_client::Error>,
    },
    /// A knowledge base known to the store was deleted in Dify. The store
    /// has forgotten it; the next run creates it and its pages again.
    #[error("knowledge base {name:?} no longer exists in dify; run again to re-create it")]
    KnowledgeBaseGone {
        /// The knowledge base name.
        name: String,
    },
    /// The state store failed.
    #[error("state store failed")]
    State(#[from] StateError),
    /// One page could not be synced; it is recorded for `retry`.
    #[error("syncing {url} failed at stage {stage}")]
    Page {
        /// The page URL.
        url: String,
        /// The stage that failed (`write`, `metadata`, `prune`, ...).
        stage: &'static str,
        /// What Dify said.
        #[source]
        source: Box<dify_client::Error>,
    },
}

impl SyncError {
    /// Whether the run must stop: every later page would fail the same way.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, SyncError::Page { .. })
    }

    /// Wraps a client error of one page, promoting run-wide causes (bad key,
    /// Dify down) to their fatal variants.
    pub(crate) fn page(url: &str, stage: &'static str, source: dify_client::Error) -> SyncError {
        match classify(source) {
            Ok(source) => SyncError::Page { url: url.to_string(), stage, source: Box::new(source) },
            Err(fatal) => fatal,
        }
    }

    /// Wraps a client error of a run-wide step (ensuring a knowledge base).
    pub(crate) fn knowledge_base(name: &str, source: dify_client::Error) -> SyncError {
        match classify(source) {
            Ok(source) => {
                SyncError::KnowledgeBase { name: name.to_string(), source: Box::new(source) }
            }
            Err(fatal) => fatal,
        }
    }
}

/// `Err` with the fatal variant for run-wide causes, `Ok` with the error
/// otherwise.
pub(crate) fn classify(error: dify_client::Error) -> Result<dify_client::Error, SyncError> {
    if error.is_unauthorized() {
        return Err(SyncError::Unauthorized(Box::new(error)));
    }
    if error.is_circuit_open() || is_connect_failure(&error) {
        return Err(SyncError::Unreachable(Box::new(error)));
    }
    Ok(error)
}

/// A transport error that never reached the server: nothing listens there.
fn is_connect_failure(error: &dify_client::Error) -> bool {
    match error {
        dify_client::Error::Transport { source, maybe_sent, .. } => {
            source.is_connect() || !maybe_sent
        }
        _ => false,
    }
}
