//! Deciding whether a page is worth keeping: word counts and error pages.
//!
//! Words are Unicode word segments (UAX #29) containing a letter or digit,
//! so punctuation does not count and each CJK ideograph counts as one, which
//! keeps thresholds meaningful across scripts. Error pages are recognized by
//! their title or first heading, and only when the content is short, since a
//! long article titled "Fixing 404 errors" is content, not an error.

use std::sync::LazyLock;

use dom_query::Document;
use regex::Regex;
use unicode_segmentation::UnicodeSegmentation;

/// Counts the words in `text`.
pub(crate) fn word_count(text: &str) -> usize {
    text.unicode_words().filter(|word| word.chars().any(char::is_alphanumeric)).count()
}

/// How deep nodes nest in `doc`, counting no further than `limit + 1`.
///
/// Walks the tree without recursion, so hostile nesting cannot overflow
/// the stack here.
pub(crate) fn nesting_depth(doc: &Document, limit: usize) -> usize {
    let mut next = doc.root().first_child();
    let mut depth = 1;
    let mut deepest = 0;

    while let Some(node) = next {
        deepest = deepest.max(depth);
        if deepest > limit {
            break;
        }
        if let Some(child) = node.first_child() {
            depth += 1;
            next = Some(child);
            continue;
        }
        next = None;
        let mut climb = Some(node);
        while let Some(current) = climb {
            if let Some(sibling) = current.next_sibling() {
                next = Some(sibling);
                break;
            }
            climb = current.parent();
            depth = depth.saturating_sub(1);
        }
    }
    deepest
}

/// Phrases that, at the start of a title segment, mark an error page.
static ERROR_TITLE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let pattern = r"(?ix)^(?:
          (?:http\s*)?(?:error\s*)?(?:400|401|403|404|410|429|500|502|503)\b
        | (?:the\s+)?(?:page|file|document|post|article|content|resource)s?\s+(?:was\s+|is\s+|could\s+not\s+be\s+)?not\s+found\b
        | not\s+found[.!]*$
        | error[.!]*$
        | oops\b
        | forbidden[.!]*$
        | access\s+denied[.!]*$
        | (?:this\s+)?page\s+(?:does\s+not|doesn't|doesn’t|no\s+longer)\s+exists?\b
        | (?:this\s+)?page\s+(?:is\s+)?(?:unavailable|missing|gone)\b
        | (?:we\s+)?can(?:no|')t\s+find\s+(?:that|the|this)\s+page\b
        | nothing\s+(?:was\s+)?found\b
        | seite\s+nicht\s+gefunden\b
        | page\s+(?:non\s+)?introuvable\b
        | página\s+no\s+encontrada\b
    )";
    // A failure here would be a bug in the constant above (a unit test
    // compiles it); detection is then disabled rather than panicking.
    Regex::new(pattern).ok()
});

/// The reason `title` looks like an error page, if it does. Titles are
/// split on the usual site-name separators so "Page not found | Example"
/// and "Example - 404" both match.
pub(crate) fn error_signal(label: &str, title: &str) -> Option<String> {
    let regex = ERROR_TITLE.as_ref()?;
    let matched = title
        .split(['|', '-', '–', '—', '·', '»', ':'])
        .map(str::trim)
        .any(|segment| regex.is_match(segment));
    matched.then(|| format!("{label} \"{}\"", title.trim()))
}

#[cfg(test)]
mod tests {
    use super::{ERROR_TITLE, error_signal, nesting_depth, word_count};
    use dom_query::Document;

    #[test]
    fn measures_nesting_without_recursion() {
        let doc = Document::from("<html><body><div><p>x</p></div><p>y</p></body></html>");
        // html > body > div > p > text
        assert_eq!(nesting_depth(&doc, 100), 5);

        let deep = format!("{}x", "<div>".repeat(1_000));
        assert_eq!(nesting_depth(&Document::from(deep.as_str()), 300), 301);
    }

    #[test]
    fn pattern_compiles() {
        assert!(ERROR_TITLE.is_some());
    }

    #[test]
    fn counts_words_across_scripts() {
        assert_eq!(word_count("Hello, world! -- 42 times."), 4);
        assert_eq!(word_count("Grüße aus Köln"), 3);
        assert_eq!(word_count("日本語"), 3);
        assert_eq!(word_count(" \n\t "), 0);
    }

    #[test]
    fn recognizes_error_titles() {
        for title in [
            "404",
            "404 Not Found",
            "Error 404 - Example",
            "Page not found | Example",
            "Example – Page Not Found",
            "Not Found",
            "Oops! That page can’t be found.",
            "Error",
            "This page doesn't exist",
            "Seite nicht gefunden",
        ] {
            assert!(error_signal("title", title).is_some(), "{title}");
        }
    }

    #[test]
    fn ignores_ordinary_titles() {
        for title in [
            "Fixing 404 errors in nginx",
            "Error handling in Rust",
            "How we found the page-cache bug",
            "Release notes 4.0.4",
            "Rust error-chain - deprecated",
        ] {
            assert!(error_signal("title", title).is_none(), "{title}");
        }
    }
}
