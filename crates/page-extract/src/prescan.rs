//! A cheap guard against pathological nesting, run before parsing.
//!
//! html5ever checks element scope by walking the stack of open elements,
//! so parsing N nested elements costs O(N²): 20,000 nested `<div>`s take
//! seconds, a megabyte of them would take hours. This pass estimates the
//! nesting from the raw text in one linear scan so such pages are refused
//! before the parser sees them. It is deliberately coarse (it is not a
//! tokenizer): it skips void elements, elements whose end tag is optional,
//! comments and the raw text of `<script>`/`<style>`, and is only compared
//! against a limit several times the real one, so ordinary pages never
//! come near it.

/// Elements that never have children.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose end tag may be left out, so open tags alone overcount.
const OPTIONAL_END: &[&str] = &[
    "body", "colgroup", "dd", "dt", "head", "html", "li", "optgroup", "option", "p", "rb", "rp",
    "rt", "rtc", "tbody", "td", "tfoot", "th", "thead", "tr",
];

/// Elements whose content is raw text up to the matching end tag.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "plaintext"];

/// The deepest nesting of explicitly closed elements in `html`, counted no
/// further than `limit + 1`.
pub(crate) fn estimated_depth(html: &str, limit: usize) -> usize {
    let bytes = html.as_bytes();
    let mut depth: usize = 0;
    let mut deepest = 0;
    let mut at = 0;

    while let Some(offset) = memchr_lt(&bytes[at..]) {
        at += offset + 1;
        if bytes[at..].starts_with(b"!--") {
            at = find(bytes, at, b"-->").unwrap_or(bytes.len());
            continue;
        }
        let closing = bytes.get(at) == Some(&b'/');
        let name = tag_name(&bytes[at + usize::from(closing)..]);
        if name.is_empty() || VOID.contains(&name.as_str()) || OPTIONAL_END.contains(&name.as_str())
        {
            continue;
        }

        if closing {
            depth = depth.saturating_sub(1);
        } else if RAW_TEXT.contains(&name.as_str()) {
            at = find(bytes, at, format!("</{name}").as_bytes()).unwrap_or(bytes.len());
        } else if !self_closing(&bytes[at..]) {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > limit {
                break;
            }
        }
    }
    deepest
}

fn memchr_lt(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'<')
}

/// Lowercase ASCII tag name at the start of `bytes`; empty if none.
fn tag_name(bytes: &[u8]) -> String {
    let name: Vec<u8> = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .map(u8::to_ascii_lowercase)
        .collect();
    if name.first().is_some_and(u8::is_ascii_alphabetic) {
        String::from_utf8(name).unwrap_or_default()
    } else {
        String::new()
    }
}

/// Whether the tag starting at `bytes` ends with `/>` (meaningful only for
/// foreign elements such as SVG, but it keeps the estimate low).
fn self_closing(bytes: &[u8]) -> bool {
    let end = bytes.iter().position(|b| *b == b'>').unwrap_or(bytes.len());
    end > 0 && bytes[end - 1] == b'/'
}

/// Position just past the first case-insensitive `needle` at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
        .map(|position| from + position + needle.len())
}

#[cfg(test)]
mod tests {
    use super::estimated_depth;

    #[test]
    fn counts_explicit_nesting_only() {
        let html = "<html><body><div><section><p>a<p>b<br><img src=x><ul><li>c<li>d</ul>\
                    </section></div></body></html>";
        assert_eq!(estimated_depth(html, 100), 3);
    }

    #[test]
    fn ignores_script_text_and_comments() {
        let html = "<div><script>for (i = 0; i<n; i++) { a<b; }</script>\
                    <!-- <div><div><div> --><style>a<b{}</style></div>";
        assert_eq!(estimated_depth(html, 100), 1);
    }

    #[test]
    fn stops_counting_past_the_limit() {
        let html = "<div>".repeat(100_000);
        assert_eq!(estimated_depth(&html, 50), 51);
        assert_eq!(estimated_depth("<", 5), 0);
        assert_eq!(estimated_depth("<script>never closed", 5), 0);
    }
}
