//! Main-content extraction: one HTML page in, clean Markdown and the page's
//! metadata out.
//!
//! [`extract`] is pure and synchronous (the pipeline runs it on the blocking
//! pool) and never panics on any input. It works in phases:
//!
//! 1. parse once with html5ever (via `dom_query`) and read the metadata
//!    (`metadata`, `jsonld`, `dates`) before anything mutates the tree;
//! 2. pick the main content with a Readability port and clean it
//!    (`content`): boilerplate out, code languages labelled, links absolute
//!    against `<base href>`;
//! 3. judge it (`verdict`): soft-404 error pages and pages with too few
//!    words are rejected with an [`ExtractError`] the pipeline reports as a
//!    skip;
//! 4. convert to Markdown and tidy it (`markdown`), opening with `# Title`.
//!
//! Documents nesting deeper than [`ExtractOptions::max_depth`] are refused
//! before any recursive pass, since a stack overflow aborts the process.
//! CSS selectors are constants (`dom_query` panics only on invalid ones)
//! and every one runs in the tests.
//!
//! ```
//! use page_extract::{ExtractOptions, extract};
//! use url::Url;
//!
//! let html = r#"<html lang="en"><head><title>Tokens | Blog</title></head><body>
//!   <nav><a href="/">Home</a></nav>
//!   <article><h1>Tokens</h1><p>A token bucket refills at a steady rate, and each
//!   request takes one token; when the bucket is empty the request waits.</p></article>
//! </body></html>"#;
//! let url = Url::parse("https://blog.example.com/tokens").unwrap();
//! let options = ExtractOptions { min_words: 10, ..ExtractOptions::default() };
//! let page = extract(html, &url, &options).unwrap();
//! assert!(page.markdown.starts_with("# Tokens\n\nA token bucket"));
//! assert_eq!(page.language.as_deref(), Some("en"));
//! ```
#![deny(missing_docs)]

mod boilerplate;
mod content;
mod dates;
mod error;
mod jsonld;
mod markdown;
mod metadata;
mod options;
mod prescan;
mod verdict;

use dom_query::Document;
use url::Url;

pub use error::ExtractError;
pub use options::{
    DEFAULT_ERROR_PAGE_MAX_WORDS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_ELEMENTS, DEFAULT_MIN_WORDS,
    ExtractOptions,
};

/// A page's main content as Markdown, with what the page says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The main content as Markdown; starts with `# Title` when the content
    /// does not open with the title and a title is known.
    pub markdown: String,
    /// The page title, without the site name where that could be told apart.
    pub title: Option<String>,
    /// The description from meta tags or JSON-LD, else the first paragraph.
    pub description: Option<String>,
    /// BCP 47 language tag from `<html lang>`, `Content-Language`,
    /// `og:locale` or JSON-LD, e.g. `en-US`.
    pub language: Option<String>,
    /// The absolute `rel=canonical` URL.
    pub canonical: Option<Url>,
    /// Publication date as stated (article meta, JSON-LD, `<time>`), in
    /// RFC 3339 when it names an instant.
    pub published: Option<String>,
    /// Last modification date, normalized like `published`.
    pub modified: Option<String>,
    /// Author or byline.
    pub author: Option<String>,
    /// Site or publisher name.
    pub site_name: Option<String>,
    /// Words in the main content (Unicode word segments).
    pub word_count: usize,
}

/// Extracts the main content of `html`, fetched from `url`, as Markdown.
///
/// # Errors
///
/// - [`ExtractError::ErrorPage`] for error pages served as success;
/// - [`ExtractError::NotEnoughContent`] when the main content has fewer
///   than `options.min_words` words;
/// - [`ExtractError::TooLarge`] when the document has more than
///   `options.max_elements` elements;
/// - [`ExtractError::TooDeep`] when its elements nest deeper than
///   `options.max_depth`.
pub fn extract(html: &str, url: &Url, options: &ExtractOptions) -> Result<Extracted, ExtractError> {
    let doc = parse(html, options.max_depth)?;
    let base = metadata::base_url(&doc, url);
    let meta = metadata::read(&doc, &base);

    let content = content::main_content(doc, &base, options.max_elements)?.unwrap_or_default();
    let word_count = verdict::word_count(&content.text);
    tracing::debug!(%url, word_count, "main content selected");
    judge(&meta, word_count, options)?;

    let title = pick_title(&meta, &content);
    let body = markdown::to_markdown(&content.html);
    let markdown = match &title {
        Some(title) if options.prepend_title => with_title(body, title),
        _ => body,
    };

    Ok(Extracted {
        markdown,
        title,
        description: meta.description.or(content.excerpt),
        language: meta.language,
        canonical: meta.canonical,
        published: meta.published,
        modified: meta.modified,
        author: meta.author.or(content.byline),
        site_name: meta.site_name.or(content.site_name),
        word_count,
    })
}

/// Parses `html`, refusing documents that nest deeper than `max_depth`.
///
/// The raw-text estimate runs first and only bounds the parser's cost
/// (hence its fourfold slack); the tree measurement is the exact check that
/// protects the recursive passes after it.
fn parse(html: &str, max_depth: usize) -> Result<Document, ExtractError> {
    let coarse_limit = max_depth.saturating_mul(4);
    if prescan::estimated_depth(html, coarse_limit) > coarse_limit {
        return Err(ExtractError::TooDeep { max: max_depth });
    }

    let doc = Document::from(html);
    if verdict::nesting_depth(&doc, max_depth) > max_depth {
        return Err(ExtractError::TooDeep { max: max_depth });
    }
    Ok(doc)
}

/// Rejects error pages and pages with too little content.
fn judge(
    meta: &metadata::PageMeta,
    word_count: usize,
    options: &ExtractOptions,
) -> Result<(), ExtractError> {
    if word_count <= options.error_page_max_words {
        let signal = [("title", &meta.document_title), ("heading", &meta.heading)]
            .into_iter()
            .find_map(|(label, text)| verdict::error_signal(label, text.as_deref()?));
        if let Some(reason) = signal {
            return Err(ExtractError::ErrorPage { reason });
        }
    }

    if word_count < options.min_words {
        return Err(ExtractError::NotEnoughContent { words: word_count, min: options.min_words });
    }
    Ok(())
}

/// The stated title if there is one; else the `<h1>` when it is the page's
/// own (the `<title>` contains it, typically with the site name around it);
/// else Readability's cleaned `<title>`.
fn pick_title(meta: &metadata::PageMeta, content: &content::Content) -> Option<String> {
    if meta.title.is_some() {
        return meta.title.clone();
    }
    let own_heading = meta.heading.as_ref().filter(|heading| {
        meta.document_title
            .as_deref()
            .is_none_or(|title| text_key(title).contains(&text_key(heading)))
    });
    own_heading.or(content.title.as_ref()).or(meta.document_title.as_ref()).cloned()
}

/// Prepends `# title` unless the body's first heading already says it.
fn with_title(body: String, title: &str) -> String {
    let first_heading = body.lines().find(|line| !line.trim().is_empty()).and_then(|line| {
        let text = line.trim_start_matches('#');
        (text.len() < line.len()).then(|| text.trim())
    });
    let already_titled = first_heading.is_some_and(|heading| same_text(heading, title));
    if already_titled || title.trim().is_empty() {
        return body;
    }

    let heading = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.is_empty() { format!("# {heading}") } else { format!("# {heading}\n\n{body}") }
}

/// Compares two titles ignoring case, whitespace and punctuation.
fn same_text(a: &str, b: &str) -> bool {
    text_key(a) == text_key(b)
}

/// Lowercase letters and digits only, for comparing titles.
fn text_key(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}
