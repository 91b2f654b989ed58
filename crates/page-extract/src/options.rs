//! Knobs for [`extract`](crate::extract).
//!
//! A plain struct with public fields and a `Default`, because callers build
//! it once from configuration and never change it while pages flow through.

/// Default for [`ExtractOptions::min_words`].
///
/// Fifty words is about two short paragraphs: enough to keep terse reference
/// pages, few enough that tag, login and empty listing pages fall below it.
pub const DEFAULT_MIN_WORDS: usize = 50;

/// Default for [`ExtractOptions::error_page_max_words`].
pub const DEFAULT_ERROR_PAGE_MAX_WORDS: usize = 200;

/// Default for [`ExtractOptions::max_elements`].
///
/// Large enough for long documentation pages with big tables (tens of
/// thousands of elements); it bounds the work spent on pathological pages.
pub const DEFAULT_MAX_ELEMENTS: usize = 300_000;

/// Default for [`ExtractOptions::max_depth`].
///
/// Real pages rarely nest past a hundred levels. The Readability and
/// Markdown passes recurse once per level, and 256 levels fit comfortably
/// in the 2 MiB stack of a tokio blocking thread even in debug builds.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// How [`extract`](crate::extract) judges and shapes a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Pages whose main content has fewer words are rejected with
    /// [`ExtractError::NotEnoughContent`](crate::ExtractError::NotEnoughContent).
    /// Default is [`DEFAULT_MIN_WORDS`].
    pub min_words: usize,

    /// A page whose title or first heading reads like an error ("404",
    /// "Page not found") is rejected as an error page only when its content
    /// has at most this many words, so that articles *about* errors survive.
    /// Default is [`DEFAULT_ERROR_PAGE_MAX_WORDS`].
    pub error_page_max_words: usize,

    /// Documents with more elements are rejected with
    /// [`ExtractError::TooLarge`](crate::ExtractError::TooLarge); 0 means no
    /// limit. Default is [`DEFAULT_MAX_ELEMENTS`].
    pub max_elements: usize,

    /// Documents whose elements nest deeper are rejected with
    /// [`ExtractError::TooDeep`](crate::ExtractError::TooDeep) before any
    /// recursive pass runs, since deep recursion would overflow the stack
    /// (an abort, not a panic). Default is [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,

    /// Start the Markdown with `# Title` when the content does not already
    /// open with that heading. Default is `true`.
    pub prepend_title: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            min_words: DEFAULT_MIN_WORDS,
            error_page_max_words: DEFAULT_ERROR_PAGE_MAX_WORDS,
            max_elements: DEFAULT_MAX_ELEMENTS,
            max_depth: DEFAULT_MAX_DEPTH,
            prepend_title: true,
        }
    }
}
