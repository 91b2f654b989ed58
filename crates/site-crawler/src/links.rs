//! Link discovery in a fetched page.
//!
//! One streaming pass over html5ever's tokenizer, without building a tree.
//! A tree builder checks element scope by walking its stack of open
//! elements, so its cost grows with the square of the nesting depth:
//! 20,000 nested `<div>`s took seconds and a megabyte of them minutes. The
//! tokenizer is linear, and the crawler only needs tags and their
//! attributes: `<base href>`, `a[href]`, `area[href]`,
//! `<link rel=canonical>`, `<meta name=robots>` and
//! `<meta http-equiv=refresh>`, plus a rough count of visible words.
//!
//! The sink switches the tokenizer into the raw-text states for `<script>`,
//! `<style>`, `<title>` and the other raw-text elements, as the tree
//! builder would, so markup inside scripts and comments is never taken for
//! a link.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer,
};
use url::Url;

use crate::url_norm;

/// Most distinct links kept from one page. A 10 MiB page of bare anchors
/// holds about 700,000; real pages stay far below this, and the frontier
/// should not grow by a million URLs from one response. Pages over it are
/// counted in [`CrawlStats::link_lists_truncated`](crate::CrawlStats).
pub const MAX_LINKS_PER_PAGE: usize = 10_000;

/// `<link rel=canonical>` candidates remembered until `<base>` is known.
const MAX_CANONICAL_CANDIDATES: usize = 8;

/// Input is fed to the tokenizer in pieces of at most this many bytes
/// (tendrils hold at most 4 GiB).
const FEED_BYTES: usize = 16 * 1024 * 1024;

/// What a page tells the crawler.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageLinks {
    /// Followable links, normalized, deduplicated, in document order, at
    /// most [`MAX_LINKS_PER_PAGE`]. Empty when the page is `nofollow`. Not
    /// yet filtered by scope.
    pub links: Vec<Url>,
    /// Whether the page had more distinct links than were kept.
    pub truncated: bool,
    /// The `<link rel=canonical>` target, normalized.
    pub canonical: Option<Url>,
    /// `<meta name=robots>` says `noindex` (or `none`).
    pub noindex: bool,
    /// `<meta name=robots>` says `nofollow` (or `none`).
    pub nofollow: bool,
    /// The first `<meta http-equiv=refresh>` that names a URL.
    pub refresh: Option<Refresh>,
    /// Visible words outside scripts, styles and the title (a rough count:
    /// every tag separates words).
    pub words: usize,
}

/// A `<meta http-equiv=refresh content="5; url=...">` redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// The delay before the browser would move on.
    pub delay: Duration,
    /// Where it would go, resolved and normalized.
    pub url: Url,
}

/// Scans the page and collects its links, resolved against the first
/// `<base href>` when present (and `http(s)`), else against `page_url`.
/// Links marked `rel=nofollow` and unfetchable schemes (`javascript:`,
/// `mailto:`, `data:`, `tel:`) are left out. Runs in time linear in the
/// input and never panics, whatever it is.
#[must_use]
pub fn extract(html: &str, page_url: &Url) -> PageLinks {
    let sink = Sink::default();
    let tokenizer = Tokenizer::new(sink, Default::default());
    let input = BufferQueue::default();
    let mut rest = html;
    while !rest.is_empty() {
        let mut cut = rest.len().min(FEED_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = rest.split_at(cut);
        input.push_back(StrTendril::from_slice(piece));
        rest = tail;
    }
    // The sink never asks to run a script, so one feed consumes all input;
    // the loop only guards against a tokenizer that pauses anyway.
    while !input.is_empty() {
        if matches!(tokenizer.feed(&input), html5ever::TokenizerResult::Done) {
            break;
        }
    }
    tokenizer.end();
    tokenizer.sink.state.into_inner().finish(page_url)
}

/// Parses robots directives (`noindex`, `nofollow`, `none`) from a
/// comma-separated value, as in `<meta name=robots>` or `X-Robots-Tag`.
/// Returns `(noindex, nofollow)`.
#[must_use]
pub fn robots_directives(value: &str) -> (bool, bool) {
    let mut noindex = false;
    let mut nofollow = false;
    for token in value.split([',', ' ']).map(str::trim) {
        if token.eq_ignore_ascii_case("noindex") || token.eq_ignore_ascii_case("none") {
            noindex = true;
        }
        if token.eq_ignore_ascii_case("nofollow") || token.eq_ignore_ascii_case("none") {
            nofollow = true;
        }
    }
    (noindex, nofollow)
}

/// Parses the `content` of a meta refresh: `delay[; url=target]`. Returns
/// the delay and the raw target; `None` when no target is named (a plain
/// reload) or the delay is not a number.
#[must_use]
pub fn parse_refresh(content: &str) -> Option<(Duration, &str)> {
    let content = content.trim_start();
    let digits = content.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(content.len());
    let (number, rest) = content.split_at(digits);
    let whole = number.split('.').next().unwrap_or_default();
    if whole.is_empty() {
        return None;
    }
    let seconds = whole.parse::<u64>().unwrap_or(u64::MAX);
    let rest = rest.trim_start().trim_start_matches([';', ',']).trim_start();
    let target = match rest.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("url") => {
            let after = rest[3..].trim_start();
            after.strip_prefix('=').map_or(rest, str::trim_start)
        }
        _ => rest,
    };
    let target = match target.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &target[1..];
            inner.find(quote).map_or(inner, |end| &inner[..end])
        }
        _ => target,
    };
    let target = target.trim();
    (!target.is_empty()).then_some((Duration::from_secs(seconds), target))
}

/// Token sink collecting raw values; resolution waits for the end, since a
/// `<base href>` applies to links before it too.
#[derive(Default)]
struct Sink {
    state: RefCell<Collected>,
}

#[derive(Default)]
struct Collected {
    base: Option<String>,
    hrefs: Vec<String>,
    distinct: HashSet<String>,
    truncated: bool,
    canonicals: Vec<String>,
    noindex: bool,
    nofollow: bool,
    refresh: Option<String>,
    words: usize,
    in_word: bool,
    /// The raw-text element being skipped, if any.
    raw: Option<String>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut state = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) => state.tag(&tag),
            Token::CharacterTokens(text) => {
                if state.raw.is_none() {
                    state.count_words(&text);
                }
                TokenSinkResult::Continue
            }
            _ => TokenSinkResult::Continue,
        }
    }
}

impl Collected {
    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        self.in_word = false;
        let name: &str = &tag.name;
        if tag.kind == TagKind::EndTag {
            if self.raw.as_deref() == Some(name) {
                self.raw = None;
            }
            return TokenSinkResult::Continue;
        }

        match name {
            "a" | "area" => self.anchor(tag),
            "base" if self.base.is_none() => self.base = attr(tag, "href").map(str::to_owned),
            "link" => {
                let canonical = attr(tag, "rel").is_some_and(|rel| has_token(rel, "canonical"));
                if let (true, Some(href)) = (canonical, attr(tag, "href"))
                    && self.canonicals.len() < MAX_CANONICAL_CANDIDATES
                {
                    self.canonicals.push(href.to_owned());
                }
            }
            "meta" => self.meta(tag),
            _ => {}
        }

        let raw = match name {
            "script" => Some(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                Some(RawKind::Rawtext)
            }
            "title" | "textarea" => Some(RawKind::Rcdata),
            "plaintext" => {
                self.raw = Some(name.to_owned());
                return TokenSinkResult::Plaintext;
            }
            _ => None,
        };
        match raw {
            Some(kind) => {
                self.raw = Some(name.to_owned());
                TokenSinkResult::RawData(kind)
            }
            None => TokenSinkResult::Continue,
        }
    }

    fn anchor(&mut self, tag: &Tag) {
        if attr(tag, "rel").is_some_and(|rel| has_token(rel, "nofollow")) {
            return;
        }
        let Some(href) = attr(tag, "href") else {
            return;
        };
        if self.distinct.contains(href) {
            return;
        }
        if self.distinct.len() >= MAX_LINKS_PER_PAGE {
            self.truncated = true;
            return;
        }
        self.distinct.insert(href.to_owned());
        self.hrefs.push(href.to_owned());
    }

    fn meta(&mut self, tag: &Tag) {
        let Some(content) = attr(tag, "content") else {
            return;
        };
        if attr(tag, "name").is_some_and(|name| name.trim().eq_ignore_ascii_case("robots")) {
            let (noindex, nofollow) = robots_directives(content);
            self.noindex |= noindex;
            self.nofollow |= nofollow;
        }
        let refresh = attr(tag, "http-equiv")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("refresh"));
        if refresh && self.refresh.is_none() && parse_refresh(content).is_some() {
            self.refresh = Some(content.to_owned());
        }
    }

    fn count_words(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.in_word = false;
            } else if !self.in_word {
                self.in_word = true;
                self.words = self.words.saturating_add(1);
            }
        }
    }

    fn finish(self, page_url: &Url) -> PageLinks {
        let base = self
            .base
            .and_then(|href| page_url.join(href.trim()).ok())
            .filter(|base| matches!(base.scheme(), "http" | "https"))
            .unwrap_or_else(|| page_url.clone());
        let canonical = self.canonicals.iter().find_map(|href| url_norm::resolve(&base, href));
        let refresh =
            self.refresh.as_deref().and_then(parse_refresh).and_then(|(delay, target)| {
                Some(Refresh { delay, url: url_norm::resolve(&base, target)? })
            });

        let links = if self.nofollow {
            Vec::new()
        } else {
            let mut seen = HashSet::new();
            self.hrefs
                .iter()
                .filter_map(|href| url_norm::resolve(&base, href))
                .filter(|url| seen.insert(url.clone()))
                .collect()
        };
        PageLinks {
            links,
            truncated: self.truncated && !self.nofollow,
            canonical,
            noindex: self.noindex,
            nofollow: self.nofollow,
            refresh,
            words: self.words,
        }
    }
}

fn attr<'a>(tag: &'a Tag, name: &str) -> Option<&'a str> {
    tag.attrs.iter().find(|attribute| &*attribute.name.local == name).map(|a| &*a.value)
}

fn has_token(list: &str, token: &str) -> bool {
    list.split_ascii_whitespace().any(|item| item.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://example.com/docs/page.html").unwrap()
    }

    fn strings(links: &PageLinks) -> Vec<&str> {
        links.links.iter().map(Url::as_str).collect()
    }

    #[test]
    fn collects_anchor_and_area_links_deduplicated() {
        let html =
            r#"<a href="a">A</a><map><area href="/b"></map><a href="a#x">again</a><a>no href</a>"#;
        let links = extract(html, &page());
        assert_eq!(strings(&links), ["https://example.com/docs/a", "https://example.com/b"]);
    }

    #[test]
    fn skips_unfetchable_schemes_and_nofollow() {
        let html = r#"<a href="javascript:go()">j</a><a href="mailto:a@b">m</a><a href="data:text/html,x">d</a>
            <a href="tel:123">t</a><a rel="external NoFollow" href="/ads">ad</a><a href="/ok">ok</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/ok"]);
    }

    #[test]
    fn honours_base_href() {
        let html = r#"<head><base href="https://example.com/other/"></head><a href="x">x</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/other/x"]);
        let html = r#"<head><base href="javascript:void(0)"></head><a href="x">x</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/docs/x"]);
    }

    #[test]
    fn a_late_base_applies_to_earlier_links_and_only_the_first_counts() {
        let html = r#"<a href="x">x</a><base href="/one/"><base href="/two/">"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/one/x"]);
    }

    #[test]
    fn finds_canonical_and_meta_robots() {
        let html = r#"<link rel="Canonical" href="/docs/page?utm_source=x"><meta name="ROBOTS" content="noindex, nofollow"><a href="/x">x</a>"#;
        let links = extract(html, &page());
        assert_eq!(links.canonical.unwrap().as_str(), "https://example.com/docs/page");
        assert!(links.noindex && links.nofollow);
        assert!(links.links.is_empty());
    }

    #[test]
    fn links_in_scripts_styles_comments_and_titles_are_not_links() {
        let html = r#"<title><a href="/t">t</a></title><script>var s = '<a href="/s">';</script>
            <style>a[href="/c"] {}</style><!-- <a href="/comment"> --><noscript><a href="/ns">n</a></noscript>
            <textarea><a href="/ta"></textarea><a href="/real">real</a>"#;
        assert_eq!(strings(&extract(html, &page())), ["https://example.com/real"]);
    }

    #[test]
    fn robots_directive_values() {
        assert_eq!(robots_directives("none"), (true, true));
        assert_eq!(robots_directives("index, follow"), (false, false));
        assert_eq!(robots_directives("NOINDEX"), (true, false));
    }

    #[test]
    fn meta_refresh_is_found_and_parsed() {
        let html = r#"<meta http-equiv="Refresh" content="0; URL='../moved.html'"><p>Moved.</p>"#;
        let found = extract(html, &page());
        let refresh = found.refresh.unwrap();
        assert_eq!(refresh.url.as_str(), "https://example.com/moved.html");
        assert_eq!(refresh.delay, Duration::ZERO);
        assert_eq!(found.words, 1);

        assert_eq!(parse_refresh("5;url=/x"), Some((Duration::from_secs(5), "/x")));
        assert_eq!(
            parse_refresh("3, https://e.com/"),
            Some((Duration::from_secs(3), "https://e.com/"))
        );
        assert_eq!(parse_refresh("2.5; url = \"/q\" "), Some((Duration::from_secs(2), "/q")));
        assert_eq!(parse_refresh("30"), None, "a reload names no target");
        assert_eq!(parse_refresh("soon; url=/x"), None);
        let reload = extract(r#"<meta http-equiv="refresh" content="30">"#, &page());
        assert!(reload.refresh.is_none());
    }

    #[test]
    fn visible_words_are_counted_outside_raw_text() {
        let html = "<title>Not counted</title><script>nor this</script><p>one two</p><p>three</p>";
        assert_eq!(extract(html, &page()).words, 3);
    }

    #[test]
    fn links_per_page_are_capped() {
        let html: String =
            (0..MAX_LINKS_PER_PAGE + 5).map(|i| format!("<a href=\"/l{i}\">x</a>")).collect();
        let found = extract(&html, &page());
        assert_eq!(found.links.len(), MAX_LINKS_PER_PAGE);
        assert!(found.truncated);
        assert!(!extract("<a href=/a>a</a>", &page()).truncated);
    }

    #[test]
    fn deep_nesting_is_scanned_in_linear_time_on_a_small_stack() {
        let depth = 200_000;
        let html = format!("{}<a href=/x>x</a>{}", "<div>".repeat(depth), "</div>".repeat(depth));
        let found = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || extract(&html, &Url::parse("http://e.com/").unwrap()).links.len())
            .unwrap()
            .join();
        assert_eq!(found.unwrap(), 1);
        let soup = format!("<div>{}</div><a href=/y>y</a>", "<b><i><u>x".repeat(20_000));
        assert_eq!(extract(&soup, &page()).links.len(), 1);
    }
}
