//! Removing page furniture before content selection.
//!
//! Readability scores blocks by text and link density, which misses
//! furniture that looks like prose: "related stories" teasers, newsletter
//! boxes, bylines and gallery controls inside the article container. Sites
//! label such blocks in their `class` and `id` names, so we drop elements
//! whose class contains a known furniture word as a whole segment (split on
//! `-` and `_`, so `related-links` matches but `unrelated` does not). It
//! runs on the fragment Readability chose, so a wrong match can only trim
//! that fragment, never change which block is chosen.
//!
//! A wrapper named after furniture (`<div class="page has-sidebar">`) may
//! hold the article itself, so an element holding a large share of the
//! page's text is never removed.

use dom_query::{Document, Selection};

/// Name segments that mark furniture, lowercase.
const FURNITURE: &[&str] = &[
    "ad",
    "ads",
    "advert",
    "advertisement",
    "banner",
    "breadcrumb",
    "breadcrumbs",
    "byline",
    "carousel",
    "comment",
    "comments",
    "consent",
    "cookie",
    "cookies",
    "credit",
    "disqus",
    "footer",
    "gallery",
    "gdpr",
    "lightbox",
    "masthead",
    "menu",
    "modal",
    "navbar",
    "newsletter",
    "outbrain",
    "paywall",
    "popular",
    "popup",
    "promo",
    "promoted",
    "rail",
    "recirc",
    "recirculation",
    "recommendations",
    "recommended",
    "related",
    "share",
    "sharing",
    "sidebar",
    "signup",
    "slideshow",
    "social",
    "sponsor",
    "sponsored",
    "subscribe",
    "subscription",
    "taboola",
    "teaser",
    "teasers",
    "timestamp",
    "trending",
    "widget",
];

/// Elements never removed by name: the document skeleton, the containers
/// that name themselves as the content, and code, where highlighters use
/// classes such as `comment` for tokens.
const PROTECTED: &str = "html, body, main, article, pre, code, pre *, code *";

/// Elements whose ids are link anchors rather than layout names.
const ANCHORED: &str = "section, h1, h2, h3, h4, h5, h6";

/// An element holding more than this share of the page text is structure,
/// not furniture.
const MAX_TEXT_SHARE: f64 = 0.3;

/// Removes furniture from `doc` in place.
pub(crate) fn strip(doc: &Document) {
    // Script and style text would dwarf the visible text in the share test.
    doc.select("script, style, template, [hidden]").remove();
    let total = doc.root().text().chars().count().max(1);

    for element in doc.select("[class], [id]").iter() {
        if is_furniture(&element) && !element.is(PROTECTED) {
            let share = element.text().chars().count() as f64 / total as f64;
            if share <= MAX_TEXT_SHARE {
                tracing::trace!(class = ?element.attr("class"), id = ?element.attr("id"), share, "furniture removed");
                element.remove();
            }
        }
    }
}

/// Class names match by segment. Ids match only whole (`id="comments"`),
/// and not on sections or headings, whose ids are usually anchors made from
/// the heading text ("related-work" is content).
fn is_furniture(element: &Selection) -> bool {
    let class = element.attr("class").unwrap_or_default();
    let by_class = class
        .split_ascii_whitespace()
        .flat_map(|name| name.split(['-', '_']))
        .any(is_furniture_word);

    by_class
        || element.attr("id").is_some_and(|id| is_furniture_word(id.trim()))
            && !element.is(ANCHORED)
}

fn is_furniture_word(name: &str) -> bool {
    FURNITURE.iter().any(|word| name.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::strip;
    use dom_query::Document;

    #[test]
    fn drops_named_furniture_but_not_lookalikes_or_wrappers() {
        let long = "word ".repeat(200);
        let html = format!(
            r#"<body><div class="page has-sidebar"><article>{long}
                <div class="related-links">Read next</div>
                <p class="unrelated">kept lookalike</p>
                <div class="share_bar">Share this</div><div id="comments">Spam</div>
                <h2 id="comments">Comments in code</h2>
                <pre><span class="token comment">// kept comment</span></pre></article></div>
                <div class="sidebar">ads here</div><div hidden>secret</div></body>"#
        );
        let doc = Document::from(html.as_str());
        strip(&doc);
        let text = doc.select("body").text();
        for kept in ["kept lookalike", "word word", "Comments in code", "// kept comment"] {
            assert!(text.contains(kept), "{kept} removed: {text}");
        }
        for gone in ["Read next", "Share this", "Spam", "ads here", "secret"] {
            assert!(!text.contains(gone), "{gone} survived: {text}");
        }
    }
}
