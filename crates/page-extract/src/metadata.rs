//! Page metadata: what the page says about itself in `<head>`, JSON-LD and
//! `<time>` elements.
//!
//! Read from the parsed document before content extraction mutates it.
//! Each fact has an ordered list of sources, most deliberate first (Open
//! Graph and article meta are written for machines; visible text is a
//! fallback), and the first non-blank value wins.

use dom_query::Document;
use url::Url;

use crate::{dates, jsonld};

/// Facts read from the document; the extractor completes them with what
/// content extraction learns (title, byline).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PageMeta {
    /// The title stated for machines (Open Graph, Twitter card, JSON-LD).
    pub(crate) title: Option<String>,
    /// The `<title>` element, often suffixed with the site name.
    pub(crate) document_title: Option<String>,
    /// The first `<h1>`.
    pub(crate) heading: Option<String>,
    /// The first few `<h1>`s, each with whether it lies in the main
    /// content container.
    pub(crate) headings: Vec<Heading>,
    pub(crate) description: Option<String>,
    pub(crate) language: Option<String>,
    pub(crate) canonical: Option<Url>,
    pub(crate) published: Option<String>,
    pub(crate) modified: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) site_name: Option<String>,
}

/// An `<h1>` and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heading {
    /// Its text, whitespace collapsed, permalink glyph removed.
    pub(crate) text: String,
    /// Inside `main`, `article` or `[role=main]`; `None` when the page has
    /// no such container, so the position says nothing.
    pub(crate) in_main: Option<bool>,
    /// Dressed as page chrome: inside `header`, `nav` or `[role=banner]`,
    /// named like a logo or menu bar, or a link to the site root.
    pub(crate) chrome: bool,
}

/// Class and id words of a site-name heading.
const CHROME_WORDS: [&str; 6] = ["site", "logo", "brand", "menu", "navbar", "masthead"];

/// Containers that mark the main content.
const MAIN: &str = "main, article, [role=main]";

/// `<h1>`s looked at for the title; pages with more are rare and the
/// first ones decide.
const MAX_HEADINGS: usize = 4;

/// Reads every fact we know how to find; `base` resolves relative URLs.
pub(crate) fn read(doc: &Document, base: &Url) -> PageMeta {
    let blocks: Vec<_> =
        doc.select(r#"script[type="application/ld+json"]"#).iter().map(|s| s.text()).collect();
    let ld = jsonld::read(blocks.iter().map(|block| &**block));

    PageMeta {
        title: first([meta(doc, "og:title"), meta(doc, "twitter:title"), ld.headline.clone()]),
        document_title: text_of(doc, "title"),
        heading: text_of(doc, "h1").and_then(|heading| without_permalink_glyph(&heading)),
        headings: headings(doc),
        description: first([
            meta(doc, "description"),
            meta(doc, "og:description"),
            meta(doc, "twitter:description"),
            ld.description.clone(),
        ])
        .and_then(|text| strip_markup(&text)),
        language: language(doc, &ld),
        canonical: canonical(doc, base),
        published: published(doc, &ld).as_deref().and_then(dates::normalize),
        modified: modified(doc, &ld).as_deref().and_then(dates::normalize),
        author: first([
            meta(doc, "author"),
            ld.author.clone(),
            article_author(doc),
            meta(doc, "dc.creator"),
        ]),
        site_name: first([
            meta(doc, "og:site_name"),
            ld.publisher.clone(),
            meta(doc, "application-name"),
        ]),
    }
}

/// The URL relative links resolve against: `<base href>` joined onto the
/// page URL, or the page URL itself.
pub(crate) fn base_url(doc: &Document, page: &Url) -> Url {
    let href = doc.select("base[href]").first().attr("href");
    href.and_then(|href| page.join(href.trim()).ok())
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .unwrap_or_else(|| page.clone())
}

fn first<const N: usize>(candidates: [Option<String>; N]) -> Option<String> {
    candidates.into_iter().flatten().next()
}

/// The content of `<meta>` whose `name`, `property` or `itemprop` equals
/// `key`, compared case-insensitively.
fn meta(doc: &Document, key: &str) -> Option<String> {
    doc.select("meta[content]").iter().find_map(|element| {
        let matches = ["name", "property", "itemprop", "http-equiv"].iter().any(|attr| {
            element.attr(attr).is_some_and(|value| value.trim().eq_ignore_ascii_case(key))
        });
        if matches { clean(&element.attr("content")?) } else { None }
    })
}

fn headings(doc: &Document) -> Vec<Heading> {
    let has_main = doc.select(MAIN).exists();
    doc.select("h1")
        .iter()
        .filter_map(|h1| {
            let text = clean(&h1.text()).and_then(|text| without_permalink_glyph(&text))?;
            let in_main = has_main.then(|| h1.ancestors(None).is(MAIN));
            Some(Heading { text, in_main, chrome: looks_like_chrome(&h1) })
        })
        .take(MAX_HEADINGS)
        .collect()
}

fn looks_like_chrome(h1: &dom_query::Selection) -> bool {
    let named = [h1.attr("class"), h1.attr("id")].into_iter().flatten().any(|names| {
        names
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| CHROME_WORDS.iter().any(|chrome| word.eq_ignore_ascii_case(chrome)))
    });
    let home_link = h1.select("a[href]").iter().any(|link| {
        link.attr("href").is_some_and(|href| matches!(href.trim(), "/" | "./" | "index.html"))
    });
    named || home_link || h1.ancestors(None).is("header, nav, [role=banner]")
}

/// Docs generators end headings with a permalink glyph (`Install¶`).
fn without_permalink_glyph(heading: &str) -> Option<String> {
    let text = heading.trim_end_matches(['¶', '#', '§', '🔗', '\u{200b}', ' ']);
    (!text.is_empty()).then(|| text.to_owned())
}

fn text_of(doc: &Document, selector: &str) -> Option<String> {
    clean(&doc.select(selector).first().text())
}

fn attr_of(doc: &Document, selector: &str, attr: &str) -> Option<String> {
    doc.select(selector).iter().find_map(|element| clean(&element.attr(attr)?))
}

/// Some CMSs put HTML in meta descriptions; keep only its text.
fn strip_markup(text: &str) -> Option<String> {
    if text.contains('<') { clean(&Document::fragment(text).text()) } else { Some(text.to_owned()) }
}

/// Collapses runs of whitespace; `None` when nothing is left.
fn clean(raw: &str) -> Option<String> {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

fn language(doc: &Document, ld: &jsonld::JsonLd) -> Option<String> {
    let candidates = [
        attr_of(doc, "html[lang]", "lang"),
        attr_of(doc, "html[xml\\:lang]", "xml:lang"),
        meta(doc, "content-language"),
        meta(doc, "og:locale"),
        ld.language.clone(),
    ];
    candidates.into_iter().flatten().find_map(|raw| bcp47(&raw))
}

/// Normalizes a language tag to BCP 47 shape (`en_US` -> `en-US`), taking
/// the first of a comma-separated list; `None` if it is not tag-shaped.
fn bcp47(raw: &str) -> Option<String> {
    let tag = raw.split(',').next()?.trim().replace('_', "-");
    let mut subtags = tag.split('-');
    let primary = subtags.next()?;
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()));
    (primary_ok && rest_ok).then_some(tag)
}

fn canonical(doc: &Document, base: &Url) -> Option<Url> {
    doc.select("link[rel][href]").iter().find_map(|link| {
        let rel = link.attr("rel")?;
        if !rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("canonical")) {
            return None;
        }
        let url = base.join(link.attr("href")?.trim()).ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    })
}

fn published(doc: &Document, ld: &jsonld::JsonLd) -> Option<String> {
    first([
        meta(doc, "article:published_time"),
        ld.published.clone(),
        meta(doc, "datePublished"),
        meta(doc, "date"),
        meta(doc, "pubdate"),
        meta(doc, "publish-date"),
        meta(doc, "dc.date.issued"),
        meta(doc, "dc.date"),
        attr_of(doc, "time[itemprop=datePublished][datetime]", "datetime"),
        attr_of(doc, "time[pubdate][datetime]", "datetime"),
        content_time(doc),
    ])
}

/// The first `<time datetime>` of the main content: inside `article`, or
/// inside `main` / `[role=main]` when the page has no `article`. A date in
/// a sidebar, a navigation block or a teaser list (`aside`, `nav`, or a
/// page `footer` within `main`) belongs to another page.
fn content_time(doc: &Document) -> Option<String> {
    let container = if doc.select("article").exists() { "article" } else { "main, [role=main]" };
    doc.select("time[datetime]").iter().find_map(|time| {
        let ancestors = time.ancestors(None);
        let in_content = ancestors.is(container);
        let elsewhere =
            ancestors.is("aside, nav") || (container != "article" && ancestors.is("footer"));
        if in_content && !elsewhere { clean(&time.attr("datetime")?) } else { None }
    })
}

fn modified(doc: &Document, ld: &jsonld::JsonLd) -> Option<String> {
    first([
        meta(doc, "article:modified_time"),
        meta(doc, "og:updated_time"),
        ld.modified.clone(),
        meta(doc, "dateModified"),
        meta(doc, "last-modified"),
        meta(doc, "dc.date.modified"),
        attr_of(doc, "time[itemprop=dateModified][datetime]", "datetime"),
    ])
}

/// `article:author` is sometimes a profile URL, which is not a name.
fn article_author(doc: &Document) -> Option<String> {
    meta(doc, "article:author").filter(|author| !author.starts_with("http"))
}
