//! Why a page yields no document.
//!
//! Every variant is a verdict about the page, not a fault in this crate: the
//! pipeline records it as "skipped" with [`ExtractError::skip_reason`], a
//! short label that stays stable across releases so reports can be compared.

/// Why [`extract`](crate::extract) produced no Markdown for a page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The main content is shorter than [`ExtractOptions::min_words`](crate::ExtractOptions::min_words).
    #[error("main content has {words} words, fewer than the minimum of {min}")]
    NotEnoughContent {
        /// Words found in the main content.
        words: usize,
        /// The configured minimum.
        min: usize,
    },

    /// The page is an error page served with a success status ("soft 404").
    #[error("page looks like an error page ({reason})")]
    ErrorPage {
        /// What gave it away, for example `title "Page not found"`.
        reason: String,
    },

    /// The document has more elements than
    /// [`ExtractOptions::max_elements`](crate::ExtractOptions::max_elements).
    #[error("document has {elements} elements, more than the limit of {max}")]
    TooLarge {
        /// Elements counted before giving up.
        elements: usize,
        /// The configured limit.
        max: usize,
    },

    /// Elements nest deeper than
    /// [`ExtractOptions::max_depth`](crate::ExtractOptions::max_depth).
    #[error("document nests elements deeper than the limit of {max}")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
}

impl ExtractError {
    /// A short, stable label for run reports: `too_little_content`,
    /// `error_page`, `too_large` or `too_deep`.
    pub fn skip_reason(&self) -> &'static str {
        match self {
            Self::NotEnoughContent { .. } => "too_little_content",
            Self::ErrorPage { .. } => "error_page",
            Self::TooLarge { .. } => "too_large",
            Self::TooDeep { .. } => "too_deep",
        }
    }
}
