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

    let content = content::main_content(doc, &base, url, options.max_elements)?.unwrap_or_default();
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

/// Separators between the page and the site name in a `<title>`.
const TITLE_SEPARATORS: [&str; 8] = [" - ", " | ", " — ", " – ", " · ", " :: ", " » ", " / "];

/// The stated title if there is one; else the page's own `<h1>`; else the
/// page segment of the `<title>` when an `<h1>` turned out to be the site
/// name; else Readability's cleaned `<title>`.
///
/// An `<h1>` is the page's own when it stands in the main content
/// container, or, on pages without one, when the `<title>` contains it.
/// An `<h1>` outside the main content (on pages without a main container:
/// in a header or nav, or named like a logo) that equals the site-name
/// segment of the `<title>` is the site name: docs generators such as
/// mdbook put the book title in an `<h1>` of the header bar. The site-name
/// segment is the last one, or the first when it equals the stated site
/// name or the page has its own `<h1>` in the main content.
fn pick_title(meta: &metadata::PageMeta, content: &content::Content) -> Option<String> {
    if meta.title.is_some() {
        return meta.title.clone();
    }
    let segments = meta.document_title.as_deref().map(title_segments).unwrap_or_default();
    let in_main_exists = meta.headings.iter().any(|heading| heading.in_main == Some(true));
    let site_segment = |heading: &metadata::Heading| -> Option<usize> {
        // Outside the main content, or, on a page without a main
        // container, dressed as page chrome.
        let outside = heading.in_main.map_or(heading.chrome, |in_main| !in_main);
        if !outside || segments.len() < 2 {
            return None;
        }
        let last = segments.len() - 1;
        let named_site =
            |text: &str| meta.site_name.as_deref().is_some_and(|site| same_text(site, text));
        [last, 0].into_iter().find(|&index| {
            let segment = segments[index].1;
            same_text(segment, &heading.text)
                && (index == last || named_site(segment) || in_main_exists)
        })
    };

    let mut site = None;
    for heading in &meta.headings {
        if let Some(index) = site_segment(heading) {
            site = site.or(Some(index));
            continue;
        }
        let own = heading.in_main == Some(true)
            || meta
                .document_title
                .as_deref()
                .is_none_or(|title| text_key(title).contains(&text_key(&heading.text)));
        if own {
            return Some(heading.text.clone());
        }
    }

    if let (Some(index), Some(title)) = (site, meta.document_title.as_deref()) {
        let page = without_segment(title, &segments, index);
        if !page.is_empty() {
            return Some(page);
        }
    }
    content.title.clone().or_else(|| meta.document_title.clone())
}

/// The segments of a `<title>` split at [`TITLE_SEPARATORS`], as
/// `(start, text)` pairs in order.
fn title_segments(title: &str) -> Vec<(usize, &str)> {
    let mut cuts: Vec<(usize, usize)> = TITLE_SEPARATORS
        .iter()
        .flat_map(|separator| {
            title.match_indices(separator).map(|(at, found)| (at, at + found.len()))
        })
        .collect();
    cuts.sort_unstable();
    let mut segments = Vec::new();
    let mut start = 0;
    let mut push = |from: usize, to: usize| {
        let raw = title.get(from..to).unwrap_or_default();
        let lead = raw.len() - raw.trim_start().len();
        if !raw.trim().is_empty() {
            segments.push((from + lead, raw.trim()));
        }
    };
    for (at, end) in cuts {
        if at >= start {
            push(start, at);
            start = end;
        }
    }
    push(start, title.len());
    segments
}

/// The `<title>` without the segment at `index` and the separator joining
/// it to the rest (only a first or last segment is ever removed).
fn without_segment(title: &str, segments: &[(usize, &str)], index: usize) -> String {
    let kept = if index + 1 == segments.len() {
        let previous = index.checked_sub(1).and_then(|before| segments.get(before));
        title.get(..previous.map_or(0, |(start, text)| start + text.len()))
    } else {
        title.get(segments.get(index + 1).map_or(title.len(), |(start, _)| *start)..)
    };
    kept.unwrap_or_default().trim().to_owned()
}

/// Prepends `# title` unless the body opens with a heading saying it; such
/// a heading (which Readability may have demoted to `##`) becomes the
/// level-one heading instead, so the title is never doubled.
fn with_title(body: String, title: &str) -> String {
    if title.trim().is_empty() {
        return body;
    }
    let first = body.lines().position(|line| !line.trim().is_empty());
    let opening = first.and_then(|index| {
        let line = body.lines().nth(index)?;
        let text = line.trim_start().trim_start_matches('#');
        (text.len() < line.trim_start().len() && text.starts_with([' ', '\t']))
            .then(|| (index, text.trim()))
    });
    if let Some((index, heading)) = opening.filter(|(_, heading)| same_text(heading, title)) {
        let heading = format!("# {heading}");
        let mut lines: Vec<&str> = body.lines().collect();
        if let Some(line) = lines.get_mut(index) {
            *line = &heading;
        }
        return lines.join("\n");
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
