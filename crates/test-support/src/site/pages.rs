//! Page generators: realistic article HTML, the plain and large sites, the
//! hostile site, and sitemap bodies.
//!
//! Text is built deterministically from the page number, so runs are
//! repeatable and two pages never share their body (content hashes differ).

use std::fmt::Write as _;

use super::{Route, TestSite, gzip};

const WORDS: &[&str] = &[
    "crawler",
    "politeness",
    "sitemap",
    "index",
    "request",
    "latency",
    "header",
    "cache",
    "server",
    "document",
    "knowledge",
    "retrieval",
    "segment",
    "token",
    "markdown",
    "extract",
    "queue",
    "host",
    "delay",
    "budget",
    "canonical",
    "redirect",
    "charset",
    "validator",
    "snapshot",
    "pipeline",
];

/// An article page in the shape real sites have: `<nav>`, `<header>`,
/// `<article>` with headings, paragraphs, a list and a code block, and a
/// `<footer>`. `links` are `(href, text)` pairs put in the nav.
#[must_use]
pub fn article_page(
    title: &str,
    seed: usize,
    paragraphs: usize,
    links: &[(String, String)],
) -> String {
    let mut html = String::with_capacity(600 + paragraphs * 700 + links.len() * 60);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"description\" content=\"About {title}\"></head><body>\n\
         <header><a href=\"/\">Test Site</a></header>\n<nav><ul>"
    );
    for (href, text) in links {
        let _ = write!(html, "<li><a href=\"{href}\">{text}</a></li>");
    }
    let _ = write!(html, "</ul></nav>\n<main><article><h1>{title}</h1>\n");
    for index in 0..paragraphs {
        if index % 4 == 0 {
            let _ = writeln!(html, "<h2>Section {} of {title}</h2>", index / 4 + 1);
        }
        let _ = writeln!(html, "<p>{}</p>", sentence(seed * 31 + index, 90));
    }
    let _ = write!(
        html,
        "<ul><li>{}</li><li>{}</li></ul>\n<pre><code class=\"language-rust\">let page = {seed};\n</code></pre>\n\
         </article></main>\n<footer><p>Copyright Test Site. <a href=\"/\">Home</a></p></footer></body></html>\n",
        sentence(seed + 7, 6),
        sentence(seed + 11, 6)
    );
    html
}

fn sentence(seed: usize, words: usize) -> String {
    let mut out = String::with_capacity(words * 9);
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for index in 0..words {
        state =
            state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if index > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[(state >> 33) % WORDS.len()]);
    }
    out.push('.');
    out
}

/// Path of page `index` of [`TestSite::plain`].
#[must_use]
pub fn plain_page_path(index: usize) -> String {
    format!("/page/{index}")
}

pub(super) fn plain(n_pages: usize) -> TestSite {
    let all: Vec<(String, String)> =
        (1..=n_pages).map(|i| (plain_page_path(i), format!("Page {i}"))).collect();
    let mut site = TestSite::new().page("/", article_page("Home", 0, 3, &all));
    for index in 1..=n_pages {
        let mut links = vec![("/".to_owned(), "Home".to_owned())];
        if index > 1 {
            links.push((plain_page_path(index - 1), "Previous".into()));
        }
        if index < n_pages {
            links.push((plain_page_path(index + 1), "Next".into()));
        }
        site = site.page(
            &plain_page_path(index),
            article_page(&format!("Page {index}"), index, 6, &links),
        );
    }
    site
}

/// Path of page `index` of [`TestSite::large`].
#[must_use]
pub fn large_page_path(index: usize) -> String {
    format!("/p/{index}")
}

pub(super) fn large(n_pages: usize) -> TestSite {
    TestSite::new().route("/", Route::redirect(301, &large_page_path(0))).generator(move |path| {
        let index: usize = path.strip_prefix("/p/")?.parse().ok()?;
        (index < n_pages).then(|| Route::html(large_page(index, n_pages)))
    })
}

fn large_page(index: usize, n_pages: usize) -> String {
    let mut links = vec![(large_page_path(0), "Root".to_owned())];
    if index > 0 {
        links.push((large_page_path((index - 1) / 10), "Up".into()));
    }
    let children = (index * 10 + 1..=index * 10 + 10).filter(|child| *child < n_pages);
    links.extend(children.map(|child| (large_page_path(child), format!("Page {child}"))));
    article_page(&format!("Page {index}"), index, 12, &links)
}

/// Paths of the cases served by [`TestSite::hostile`].
pub mod hostile {
    /// `/loop/a` -> `/loop/b` -> `/loop/a` ...
    pub const REDIRECT_LOOP: &str = "/loop/a";
    /// `/chain/0` -> `/chain/1` -> ... without end.
    pub const ENDLESS_REDIRECTS: &str = "/chain/0";
    /// Redirects to `http://localhost:1/`, a host out of scope (and a port
    /// nothing listens on, should a crawler follow it anyway).
    pub const REDIRECT_OUT_OF_SCOPE: &str = "/away";
    /// A calendar whose month pages link to the next month forever.
    pub const CALENDAR: &str = "/cal/2026/12";
    /// A 50 MiB page with `Content-Length`.
    pub const HUGE: &str = "/huge";
    /// A 50 MiB page streamed without `Content-Length`.
    pub const HUGE_CHUNKED: &str = "/huge-chunked";
    /// Size of the huge pages.
    pub const HUGE_BYTES: u64 = 50 * 1024 * 1024;
    /// PNG bytes served as `text/html`.
    pub const BINARY: &str = "/binary";
    /// A PDF served as `application/pdf`.
    pub const PDF: &str = "/doc.pdf";
    /// A page declared UTF-8 with a few invalid byte sequences.
    pub const INVALID_UTF8: &str = "/invalid-utf8";
    /// Valid non-ASCII text on the [`INVALID_UTF8`] page, which must
    /// survive decoding.
    pub const INVALID_UTF8_TEXT: &str = "Grüße aus Köln – naïve café";
    /// A windows-1252 page declared by `<meta charset>` only.
    pub const WINDOWS_1252: &str = "/latin";
    /// A Shift_JIS page declared in the `Content-Type` header.
    pub const SHIFT_JIS: &str = "/sjis";
    /// Text the windows-1252 page contains once decoded.
    pub const WINDOWS_1252_TEXT: &str = "Crème brûlée à la façon de Noël";
    /// Text the Shift_JIS page contains once decoded.
    pub const SHIFT_JIS_TEXT: &str = "日本語のテストページです";
    /// Never answers.
    pub const STALL: &str = "/stall";
    /// Links with `javascript:`, `mailto:`, `data:` and `tel:` schemes, and
    /// one real link to [`JUNK_LINKS_TARGET`].
    pub const JUNK_LINKS: &str = "/junk-links";
    /// The one fetchable link of [`JUNK_LINKS`].
    pub const JUNK_LINKS_TARGET: &str = "/page/1";
    /// A page with `<base href="/elsewhere/">` and a relative link `target`.
    pub const BASE_HREF: &str = "/base/page";
    /// Where [`BASE_HREF`]'s relative link resolves to.
    pub const BASE_HREF_TARGET: &str = "/elsewhere/target";
    /// 200,000 nested `<div>`s (1 MB) around one link to
    /// [`DEEP_NESTING_TARGET`]: quadratic for a tree builder.
    pub const DEEP_NESTING: &str = "/deep-nesting";
    /// Nesting depth of the [`DEEP_NESTING`] page.
    pub const DEEP_NESTING_DEPTH: usize = 200_000;
    /// The link inside the [`DEEP_NESTING`] page.
    pub const DEEP_NESTING_TARGET: &str = "/page/1";
}

pub(super) fn hostile_site() -> TestSite {
    use hostile::*;

    let cases = [
        REDIRECT_LOOP,
        ENDLESS_REDIRECTS,
        REDIRECT_OUT_OF_SCOPE,
        CALENDAR,
        HUGE,
        HUGE_CHUNKED,
        BINARY,
        PDF,
        INVALID_UTF8,
        WINDOWS_1252,
        SHIFT_JIS,
        STALL,
        JUNK_LINKS,
        BASE_HREF,
        DEEP_NESTING,
    ];
    let links: Vec<(String, String)> =
        cases.iter().map(|path| ((*path).to_owned(), (*path).to_owned())).collect();
    TestSite::new()
        .page("/", article_page("Hostile home", 0, 2, &links))
        .route("/loop/a", Route::redirect(302, "/loop/b"))
        .route("/loop/b", Route::redirect(302, "/loop/a"))
        .route(REDIRECT_OUT_OF_SCOPE, Route::redirect(302, "http://localhost:1/"))
        .route(HUGE, Route::huge(HUGE_BYTES, true))
        .route(HUGE_CHUNKED, Route::huge(HUGE_BYTES, false))
        .route(BINARY, Route::bytes("text/html", binary_bytes()))
        .route(PDF, Route::bytes("application/pdf", &b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"[..]))
        .route(INVALID_UTF8, Route::bytes("text/html; charset=utf-8", invalid_utf8()))
        .route(WINDOWS_1252, Route::bytes("text/html", windows_1252()))
        .route(SHIFT_JIS, Route::bytes("text/html; charset=Shift_JIS", shift_jis()))
        .route(STALL, Route::html("never sent").stalled())
        .page(JUNK_LINKS, junk_links())
        .page(BASE_HREF, base_href())
        .page(DEEP_NESTING, deep_nesting())
        .page(JUNK_LINKS_TARGET, article_page("Target", 1, 2, &[]))
        .page(BASE_HREF_TARGET, article_page("Elsewhere", 2, 2, &[]))
        .generator(endless_redirects)
        .generator(calendar)
}

fn endless_redirects(path: &str) -> Option<Route> {
    let step: u64 = path.strip_prefix("/chain/")?.parse().ok()?;
    Some(Route::redirect(302, &format!("/chain/{}", step + 1)))
}

fn calendar(path: &str) -> Option<Route> {
    let (year, month) = path.strip_prefix("/cal/")?.split_once('/')?;
    let (year, month): (u32, u32) = (year.parse().ok()?, month.parse().ok()?);
    if !(1..=12).contains(&month) {
        return None;
    }
    let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    let (prev_year, prev_month) = if month == 1 { (year - 1, 12) } else { (year, month - 1) };
    let links = [
        (format!("/cal/{next_year}/{next_month}"), "Next month".to_owned()),
        (format!("/cal/{prev_year}/{prev_month}"), "Previous month".to_owned()),
    ];
    let seed = usize::try_from(year * 12 + month).unwrap_or(0);
    Some(Route::html(article_page(&format!("Events {year}-{month:02}"), seed, 2, &links)))
}

fn binary_bytes() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes
}

fn invalid_utf8() -> Vec<u8> {
    let page = article_page("Invalid UTF-8", 5, 4, &[]);
    let page =
        page.replace("<article>", &format!("<article><p>{}</p>", hostile::INVALID_UTF8_TEXT));
    let mut bytes = page.into_bytes();
    let at = bytes.len() / 2;
    bytes.splice(at..at, [0xC3, 0x28, 0xFF]);
    bytes
}

fn windows_1252() -> Vec<u8> {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"windows-1252\"><title>Latin</title></head>\
         <body><article><h1>{}</h1><p>{}</p></article></body></html>",
        hostile::WINDOWS_1252_TEXT,
        sentence(3, 60)
    );
    html.chars().map(|c| encode_1252(c).unwrap_or(b'?')).collect()
}

/// The windows-1252 byte of the few non-ASCII characters the page uses.
fn encode_1252(c: char) -> Option<u8> {
    match c {
        'è' => Some(0xE8),
        'û' => Some(0xFB),
        'é' => Some(0xE9),
        'à' => Some(0xE0),
        'ç' => Some(0xE7),
        'ë' => Some(0xEB),
        c if c.is_ascii() => u8::try_from(c).ok(),
        _ => None,
    }
}

fn shift_jis() -> Vec<u8> {
    // 日本語のテストページです in Shift_JIS, byte for byte.
    const TEXT: &[u8] = b"\x93\xfa\x96\x7b\x8c\xea\x82\xcc\x83\x65\x83\x58\x83\x67\x83\x79\x81\x5b\x83\x57\x82\xc5\x82\xb7";
    let mut bytes =
        b"<!DOCTYPE html><html><head><title>SJIS</title></head><body><article><h1>".to_vec();
    bytes.extend_from_slice(TEXT);
    bytes.extend_from_slice(b"</h1><p>");
    bytes.extend_from_slice(sentence(4, 40).as_bytes());
    bytes.extend_from_slice(b"</p></article></body></html>");
    bytes
}

fn junk_links() -> String {
    let links = [
        ("javascript:void(0)", "Script"),
        ("mailto:someone@example.com", "Mail"),
        ("data:text/html,<p>inline</p>", "Data"),
        ("tel:+15550100", "Phone"),
        (hostile::JUNK_LINKS_TARGET, "Real"),
    ];
    let links: Vec<(String, String)> =
        links.iter().map(|(h, t)| ((*h).to_owned(), (*t).to_owned())).collect();
    article_page("Junk links", 9, 2, &links)
}

fn base_href() -> String {
    article_page("Base href", 10, 2, &[("target".to_owned(), "Relative".to_owned())])
        .replace("<head>", "<head><base href=\"/elsewhere/\">")
}

fn deep_nesting() -> String {
    let depth = hostile::DEEP_NESTING_DEPTH;
    format!(
        "<!DOCTYPE html><html><head><title>Deep</title></head><body>{}<a href=\"{}\">deep link</a>{}</body></html>",
        "<div>".repeat(depth),
        hostile::DEEP_NESTING_TARGET,
        "</div>".repeat(depth)
    )
}

/// An XML `urlset` listing `(url, lastmod)` pairs.
#[must_use]
pub fn sitemap_xml(entries: &[(String, Option<String>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for (url, lastmod) in entries {
        let _ = write!(xml, "  <url><loc>{url}</loc>");
        if let Some(lastmod) = lastmod {
            let _ = write!(xml, "<lastmod>{lastmod}</lastmod>");
        }
        xml.push_str("</url>\n");
    }
    xml.push_str("</urlset>\n");
    xml
}

/// An XML `sitemapindex` listing sitemap URLs.
#[must_use]
pub fn sitemap_index(sitemaps: &[String]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for url in sitemaps {
        let _ = writeln!(xml, "  <sitemap><loc>{url}</loc></sitemap>");
    }
    xml.push_str("</sitemapindex>\n");
    xml
}

/// A text sitemap: one URL per line.
#[must_use]
pub fn sitemap_txt(urls: &[String]) -> String {
    urls.iter().map(|url| format!("{url}\n")).collect()
}

/// Compresses a sitemap for serving as `.xml.gz`.
#[must_use]
pub fn sitemap_gz(xml: &str) -> Vec<u8> {
    gzip(xml.as_bytes())
}
