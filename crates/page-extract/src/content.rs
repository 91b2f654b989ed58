//! Finding the main content and preparing it for Markdown conversion.
//!
//! Selection is dom_smoothie's Readability port: it scores blocks by text
//! and link density and strips navigation, footers, comments and share
//! widgets. Readability keeps markup that Markdown cannot say or that would
//! leak noise (forms, embeds, `javascript:` links, syntax-highlighting
//! spans, icon-only links, heading permalinks), so a second pass over the
//! chosen fragment removes that, labels code blocks with their language,
//! gives header-less data tables a header row and makes every link absolute
//! against the page's base URL.

use dom_query::{Document, Selection};
use dom_smoothie::{Config, Readability, ReadabilityError};
use url::Url;

use crate::{ExtractError, boilerplate};

/// The main content as cleaned HTML, with what Readability learned.
#[derive(Debug, Default)]
pub(crate) struct Content {
    /// Cleaned HTML of the main content.
    pub(crate) html: String,
    /// Plain text of the main content, for counting words.
    pub(crate) text: String,
    /// Readability's title guess: the `<title>` with the site name removed.
    pub(crate) title: Option<String>,
    /// Readability's byline guess.
    pub(crate) byline: Option<String>,
    /// The first paragraph, used when the page has no description.
    pub(crate) excerpt: Option<String>,
    /// The site name Readability found.
    pub(crate) site_name: Option<String>,
}

/// Elements that carry no readable content, or only widgets.
const NOISE: &str = "script, style, noscript, template, iframe, object, embed, form, button, \
                     input, select, textarea, svg, canvas, dialog, link, meta";

/// Runs Readability on `doc`; `Ok(None)` when it finds no content at all.
pub(crate) fn main_content(
    doc: Document,
    base: &Url,
    page: &Url,
    max_elements: usize,
) -> Result<Option<Content>, ExtractError> {
    let config = Config {
        // Classes carry code-block languages; they are dropped later.
        keep_classes: true,
        max_elements_to_parse: max_elements,
        ..Config::default()
    };
    let mut readability = match Readability::with_document(doc, Some(base.as_str()), Some(config)) {
        Ok(readability) => readability,
        Err(error) => {
            tracing::debug!(%error, "base URL rejected by readability");
            return Ok(None);
        }
    };

    let article = match readability.parse() {
        Ok(article) => article,
        Err(ReadabilityError::TooManyElements(elements, max)) => {
            return Err(ExtractError::TooLarge { elements, max });
        }
        Err(error) => {
            tracing::debug!(%error, "readability found no content");
            return Ok(None);
        }
    };

    let (html, text) = tidy(&article.content, base, page);
    Ok(Some(Content {
        html,
        text,
        title: non_blank(article.title),
        byline: article.byline.and_then(non_blank),
        excerpt: article.excerpt.and_then(non_blank),
        site_name: article.site_name.and_then(non_blank),
    }))
}

fn non_blank(text: String) -> Option<String> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

/// Cleans a content fragment; returns its HTML and its plain text. `page`
/// is the page's own URL, to tell links to a place on the same page.
pub(crate) fn tidy(fragment: &str, base: &Url, page: &Url) -> (String, String) {
    let doc = Document::fragment(fragment);
    doc.select(NOISE).remove();
    boilerplate::strip(&doc);
    doc.select("a[title], img[title]").remove_attr("title");

    remove_permalinks(&doc, base, page);
    remove_empty_links(&doc);
    for pre in doc.select("pre").iter() {
        label_code_block(&pre);
    }
    for table in doc.select("table").iter() {
        promote_header_row(&table);
    }
    for link in doc.select("a[href]").iter() {
        absolutize(&link, "href", base);
    }
    for image in doc.select("img").iter() {
        fix_image_source(&image, base);
    }

    (doc.html().to_string(), doc.text().to_string())
}

/// A data table without `<th>` gets its first row as the header, so it
/// becomes a Markdown table instead of loose paragraphs. Layout tables are
/// left alone: a table holding another table or held in a cell, a single
/// row or a single cell.
fn promote_header_row(table: &Selection) {
    let layout = table.select("table").exists() || table.ancestors(None).is("td, th");
    if layout || table.select("th").exists() || table.select("td").length() < 2 {
        return;
    }
    let rows = table.select("tr");
    if rows.length() < 2 {
        return;
    }
    rows.first().select("td").rename("th");
}

/// Rewrites every `<pre>` as `<pre><code>` holding plain text, so htmd
/// emits a fence (it fences only `pre > code`) and highlighter markup is
/// dropped; the code element gets `class="language-x"` when the page names
/// the language anywhere nearby, so the fence carries it.
fn label_code_block(pre: &Selection) {
    let class = code_language(pre).map(|language| format!(" class=\"language-{language}\""));
    // A `<br>` is a line break in the rendered code; its text is nothing.
    pre.select("br").replace_with_html("\n");
    let text = pre.text();
    pre.set_html(format!("<code{}>{}</code>", class.unwrap_or_default(), escape_text(&text)));
}

fn code_language(pre: &Selection) -> Option<String> {
    let code = pre.select("code").first();
    let parent = pre.parent();
    let grandparent = parent.parent();
    [&code, pre, &parent, &grandparent].into_iter().find_map(|element| language_of(element))
}

/// The language an element's attributes name: `class="language-rust"`,
/// `lang-py`, `highlight-source-js` (GitHub), `highlight-python` (Sphinx),
/// `brush: ruby`, a pandoc
/// `sourceCode rust`, or `data-lang` / `data-language`.
fn language_of(element: &Selection) -> Option<String> {
    for attr in ["data-lang", "data-language"] {
        if let Some(language) = element.attr(attr).and_then(|value| sanitize_language(&value)) {
            return Some(language);
        }
    }

    let class = element.attr("class")?;
    let tokens: Vec<&str> = class.split_ascii_whitespace().collect();
    let prefixed = tokens.iter().find_map(|token| {
        ["language-", "lang-", "highlight-source-", "highlight-", "brush:"]
            .iter()
            .find_map(|prefix| token.strip_prefix(prefix))
            .and_then(sanitize_language)
    });
    let brush = tokens
        .windows(2)
        .find(|pair| pair[0] == "brush:" || pair[0] == "sourceCode")
        .and_then(|pair| sanitize_language(pair[1]));
    prefixed.or(brush)
}

/// Accepts names like `rust`, `c++`, `objective-c`, `f#`; rejects noise.
fn sanitize_language(raw: &str) -> Option<String> {
    let name = raw.trim().trim_end_matches(';').to_ascii_lowercase();
    let valid = (1..=24).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "+#_-.".contains(c))
        && !matches!(
            name.as_str(),
            "none" | "plain" | "plaintext" | "text" | "nohighlight" | "default" | "notranslate"
        );
    valid.then_some(name)
}

fn escape_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Heading permalinks (`<a href="#install">¶</a>`, Sphinx `headerlink`,
/// GitHub `anchor`, Docusaurus `hash-link`) are navigation glyphs, not
/// text, and are dropped. A heading wrapped in a link to its own anchor
/// (mdbook's `<a class="header" href="#x">`) keeps its text, unlinked.
fn remove_permalinks(doc: &Document, base: &Url, page: &Url) {
    doc.select("a.headerlink, a.anchor, a.hash-link, a.anchorjs-link").remove();
    for link in doc.select("a[href]").iter() {
        let glyphs_only =
            !link.text().chars().any(char::is_alphanumeric) && !link.select("img").exists();
        let in_heading = link.ancestors(None).is("h1, h2, h3, h4, h5, h6");
        let same_page = link.attr("href").is_some_and(|href| points_here(&href, base, page));
        if glyphs_only && (in_heading || same_page) {
            link.remove();
        } else if in_heading && same_page {
            link.replace_with_html(link.inner_html());
        }
    }
}

/// Whether `href` is a place on the page itself: a bare fragment, or the
/// page's (or base's) URL with a fragment.
fn points_here(href: &str, base: &Url, page: &Url) -> bool {
    let href = href.trim();
    if href.starts_with('#') {
        return true;
    }
    let Ok(mut target) = base.join(href) else {
        return false;
    };
    if target.fragment().is_none() {
        return false;
    }
    target.set_fragment(None);
    let without_fragment = |url: &Url| {
        let mut url = url.clone();
        url.set_fragment(None);
        url
    };
    target == without_fragment(page) || target == without_fragment(base)
}

/// Links with nothing to show (icon fonts, emptied by cleaning) would
/// become `[](url)`: they are dropped, or unwrapped when they hold an
/// image, which then stands alone.
fn remove_empty_links(doc: &Document) {
    for link in doc.select("a").iter() {
        if !link.text().trim().is_empty() {
            continue;
        }
        let images = link.select("img");
        let described =
            images.iter().any(|image| image.attr("alt").is_some_and(|alt| !alt.trim().is_empty()));
        if described {
            continue;
        }
        if images.exists() {
            link.replace_with_html(link.inner_html());
        } else {
            link.remove();
        }
    }
}

/// Resolves `attr` against `base`. `javascript:` links are not links to
/// content, so they lose the attribute and render as plain text.
fn absolutize(element: &Selection, attr: &str, base: &Url) {
    let Some(value) = element.attr(attr) else {
        return;
    };
    let value = value.trim();
    if value.get(..11).is_some_and(|scheme| scheme.eq_ignore_ascii_case("javascript:")) {
        element.remove_attr(attr);
        return;
    }
    if let Ok(url) = base.join(value) {
        element.set_attr(attr, url.as_str());
    }
}

/// Lazy-loading pages put the real image in `data-src` and a placeholder
/// (or nothing) in `src`.
fn fix_image_source(image: &Selection, base: &Url) {
    let src = image.attr("src").map(|src| src.trim().to_owned()).unwrap_or_default();
    let lazy = image.attr("data-src").or_else(|| image.attr("data-lazy-src"));
    if let Some(lazy) = lazy.filter(|_| src.is_empty() || src.starts_with("data:")) {
        image.set_attr("src", lazy.trim());
    }
    absolutize(image, "src", base);
}

#[cfg(test)]
mod tests {
    use super::sanitize_language;
    use url::Url;

    fn base() -> Url {
        Url::parse("https://example.com/docs/page.html").unwrap()
    }

    fn tidy(html: &str, base: &Url) -> (String, String) {
        super::tidy(html, base, base)
    }

    #[test]
    fn labels_code_blocks_from_many_conventions() {
        let cases = [
            (r#"<pre><code class="language-rust">fn main() {}</code></pre>"#, "language-rust"),
            (r#"<pre class="lang-py">print(1)</pre>"#, "language-py"),
            (r#"<div class="highlight highlight-source-js"><pre>x()</pre></div>"#, "language-js"),
            (r#"<pre data-lang="go">go f()</pre>"#, "language-go"),
            (r#"<pre class="brush: ruby;">puts 1</pre>"#, "language-ruby"),
            (r#"<pre class="sourceCode haskell">main = pure ()</pre>"#, "language-haskell"),
            (
                r#"<div class="highlight-python notranslate"><pre>x = 1</pre></div>"#,
                "language-python",
            ),
        ];
        for (html, expected) in cases {
            let (out, _) = tidy(html, &base());
            assert!(out.contains(expected), "{html} -> {out}");
        }
    }

    #[test]
    fn highlighter_spans_are_flattened_and_text_escaped() {
        let html = r#"<pre class="language-html"><span class="t">&lt;b&gt;</span> &amp;</pre>"#;
        let (out, text) = tidy(html, &base());
        assert!(out.contains(r#"<code class="language-html">&lt;b&gt; &amp;</code>"#), "{out}");
        assert_eq!(text, "<b> &");
    }

    #[test]
    fn unlabelled_pre_still_gets_a_code_element() {
        let (out, _) = tidy("<pre><span>plain</span> text</pre>", &base());
        assert!(out.contains("<pre><code>plain text</code></pre>"), "{out}");
    }

    #[test]
    fn heading_permalinks_are_dropped() {
        let html = r##"<h2>Install<a class="headerlink" href="#install">¶</a></h2>
            <h3>Usage<a href="#usage">#</a></h3><p><a href="#usage">see usage</a></p>"##;
        let (out, text) = tidy(html, &base());
        assert!(!text.contains('¶') && !text.contains('#'), "{out}");
        assert!(out.contains("see usage"), "{out}");
    }

    #[test]
    fn heading_self_links_are_unwrapped_and_glyph_links_dropped() {
        let html = r##"<h2 id="a"><a class="header" href="#a">Data Types</a></h2>
            <h3><a href="https://example.com/docs/page.html#b">Scalar Types</a></h3>
            <h3>Usage <a href="https://example.com/docs/page.html#u">🔗</a></h3>
            <h4>See <a href="other.html#x">Other</a></h4>
            <p><a href="#a">back to top</a> and <a href="https://example.com/docs/page.html#b">§</a></p>"##;
        let (out, text) = tidy(html, &base());
        assert!(out.contains(r#"<h2 id="a">Data Types</h2>"#), "{out}");
        assert!(out.contains("<h3>Scalar Types</h3>"), "{out}");
        assert!(!text.contains('🔗') && !text.contains('§'), "{out}");
        assert!(
            out.contains(r#"<a href="https://example.com/docs/other.html#x">Other</a>"#),
            "{out}"
        );
        assert!(out.contains("back to top</a>"), "links in text are kept: {out}");
    }

    #[test]
    fn empty_links_are_dropped_and_bare_images_unlinked() {
        let html = r#"<p>Text <a href="prev.html"><i class="fa fa-angle-left"></i></a>
            <a href="next.html"> </a><a href="big.png"><img src="small.png"></a>
            <a href="home.html"><img src="logo.png" alt="Home"></a></p>"#;
        let (out, _) = tidy(html, &base());
        assert!(!out.contains("prev.html") && !out.contains("next.html"), "{out}");
        assert!(!out.contains("big.png") && out.contains("small.png"), "{out}");
        assert!(out.contains("home.html"), "a described image keeps its link: {out}");
    }

    #[test]
    fn header_less_tables_get_a_header_row_but_layout_tables_do_not() {
        let data = "<table><tr><td>k</td><td>v</td></tr><tr><td>a</td><td>1</td></tr></table>";
        let (out, _) = tidy(data, &base());
        assert!(out.contains("<th>k</th><th>v</th>"), "{out}");
        assert!(out.contains("<td>a</td>"), "{out}");

        for layout in [
            "<table><tr><td>only cell</td></tr></table>",
            "<table><tr><td>one</td><td>row</td></tr></table>",
            "<table><tr><td><table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table></td></tr><tr><td>x</td></tr></table>",
        ] {
            let (out, _) = tidy(layout, &base());
            assert!(!out.contains("<th>"), "{layout} -> {out}");
        }
    }

    #[test]
    fn line_breaks_in_pre_become_newlines() {
        let (out, text) = tidy("<pre>line one<br>line two<br/>line three</pre>", &base());
        assert!(out.contains("<code>line one\nline two\nline three</code>"), "{out}");
        assert_eq!(text, "line one\nline two\nline three");
    }

    #[test]
    fn rejects_language_noise() {
        assert_eq!(sanitize_language("Rust;").as_deref(), Some("rust"));
        assert_eq!(sanitize_language("none"), None);
        assert_eq!(sanitize_language("a b"), None);
        assert_eq!(sanitize_language(""), None);
    }

    #[test]
    fn links_and_images_become_absolute() {
        let html = r#"<p><a href="../a?x=1">a</a><a href="javascript:void(0)">j</a>
            <img data-src="/lazy.png" src="data:image/gif;base64,R0"></p>"#;
        let (out, _) = tidy(html, &base());
        assert!(out.contains(r#"href="https://example.com/a?x=1""#), "{out}");
        assert!(out.contains("<a>j</a>"), "{out}");
        assert!(out.contains(r#"src="https://example.com/lazy.png""#), "{out}");
    }

    #[test]
    fn widgets_and_scripts_are_removed() {
        let html = "<p>keep</p><script>evil()</script><form><input></form><style>p{}</style>";
        let (out, text) = tidy(html, &base());
        assert!(!out.contains("evil") && !out.contains("form") && !out.contains("p{}"), "{out}");
        assert_eq!(text.trim(), "keep");
    }
}
