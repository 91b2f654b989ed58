//! Behaviour of `extract` on small hand-written pages: boilerplate removal,
//! each Markdown construct, metadata sources and the skip verdicts.

use page_extract::{ExtractError, ExtractOptions, Extracted, extract};
use url::Url;

const FILLER: &str = "A crawler that respects servers keeps a budget of requests for each \
    host and slows down as soon as the host signals distress. It reads robots rules first, \
    honours the crawl delay and retries only idempotent requests with jittered backoff.";

fn page_url() -> Url {
    Url::parse("https://blog.example.com/posts/rate-limits.html").unwrap()
}

fn run(html: &str) -> Extracted {
    match extract(html, &page_url(), &ExtractOptions::default()) {
        Ok(page) => page,
        Err(error) => panic!("extraction failed: {error}"),
    }
}

/// Wraps `article` in a page full of the usual boilerplate.
fn page_with(head: &str, article: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><title>Rate limits | Example Blog</title>{head}</head>
        <body>
          <div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. Accept all cookies?</div>
          <header class="site-header"><nav class="menu"><a href="/">Home</a> <a href="/about">About us</a> <a href="/careers">Careers at Example</a></nav></header>
          <main><article class="post">{article}</article>
          <aside class="sidebar"><div class="ad">Buy our premium crawler subscription today</div></aside>
          <section id="comments" class="comments"><div class="comment">Spam comment with a casino link</div></section>
          <div class="share social"><a href="https://share.example/x">Share on social media</a></div>
          </main>
          <footer class="site-footer">Copyright Example Corp. All rights reserved. Imprint and privacy policy.</footer>
        </body></html>"#
    )
}

fn article() -> String {
    format!(
        "<h1>Rate limits</h1><p>{FILLER}</p><p>{FILLER}</p>\
         <h2>Token buckets</h2><p>Each host gets its own <strong>bucket</strong>; see the \
         <a href=\"../docs/limits\">limits documentation</a> for <em>defaults</em>.</p><p>{FILLER}</p>"
    )
}

#[test]
fn boilerplate_is_removed_and_article_kept() {
    let page = run(&page_with("", &article()));
    let md = &page.markdown;

    assert!(md.starts_with("# Rate limits\n\n"), "{md}");
    assert!(md.contains("## Token buckets"), "{md}");
    assert!(md.contains("keeps a budget of requests"), "{md}");
    for noise in ["cookies", "About us", "premium crawler", "casino", "Share on", "Copyright"] {
        assert!(!md.contains(noise), "{noise:?} leaked into:\n{md}");
    }
    assert!(!md.contains('<') && !md.contains("readability-page"), "{md}");
    assert!(!md.contains("\n\n\n"), "{md}");
    assert!(page.word_count > 100, "{}", page.word_count);
}

#[test]
fn links_are_absolute_and_follow_base_href() {
    let page = run(&page_with("", &article()));
    assert!(
        page.markdown.contains("[limits documentation](https://blog.example.com/docs/limits)"),
        "{}",
        page.markdown
    );

    let with_base = page_with(r#"<base href="https://cdn.example.net/root/">"#, &article());
    let page = run(&with_base);
    assert!(
        page.markdown.contains("[limits documentation](https://cdn.example.net/docs/limits)"),
        "{}",
        page.markdown
    );
}

#[test]
fn markdown_keeps_structure() {
    let body = format!(
        r#"<h1>Rate limits</h1><p>{FILLER}</p>
        <ul><li>first point</li><li>second point</li></ul>
        <ol><li>step one</li><li>step two</li></ol>
        <pre><code class="language-rust">let quota = 2;
let burst = 4;</code></pre>
        <div class="highlight highlight-source-python"><pre>print("hi")</pre></div>
        <table><thead><tr><th>Host</th><th>Rate</th></tr></thead>
          <tbody><tr><td>small</td><td>1</td></tr><tr><td>cdn</td><td>5</td></tr></tbody></table>
        <blockquote><p>Be the crawler you would want visiting.</p></blockquote>
        <p>Text with <em>emphasis</em> and <strong>strength</strong> and <code>inline</code>.</p>
        <figure><img src="/img/bucket.png" alt="Token bucket diagram"></figure>
        <p>{FILLER}</p>"#
    );
    let md = run(&page_with("", &body)).markdown;

    for expected in [
        "- first point\n- second point",
        "1. step one\n2. step two",
        "```rust\nlet quota = 2;\nlet burst = 4;\n```",
        "```python\nprint(\"hi\")\n```",
        "| Host  | Rate |",
        "| small | 1    |",
        "> Be the crawler you would want visiting.",
        "*emphasis*",
        "**strength**",
        "`inline`",
        "![Token bucket diagram](https://blog.example.com/img/bucket.png)",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
    }
}

#[test]
fn metadata_from_meta_tags() {
    let head = r#"
        <meta property="og:title" content="Rate limits explained">
        <meta name="description" content="&lt;p&gt;How polite crawlers &lt;b&gt;pace&lt;/b&gt; themselves.&lt;/p&gt;">
        <meta property="og:site_name" content="Example Blog">
        <meta name="author" content="Ada Lovelace">
        <meta property="article:published_time" content="2024-03-05T10:20:30+0100">
        <meta property="article:modified_time" content="Tue, 05 Mar 2024 12:00:00 GMT">
        <link rel="canonical" href="/posts/rate-limits">"#;
    let page = run(&page_with(head, &article()));

    assert_eq!(page.title.as_deref(), Some("Rate limits explained"));
    assert_eq!(page.description.as_deref(), Some("How polite crawlers pace themselves."));
    assert_eq!(page.site_name.as_deref(), Some("Example Blog"));
    assert_eq!(page.author.as_deref(), Some("Ada Lovelace"));
    assert_eq!(page.language.as_deref(), Some("en"));
    assert_eq!(page.published.as_deref(), Some("2024-03-05T10:20:30+01:00"));
    assert_eq!(page.modified.as_deref(), Some("2024-03-05T12:00:00Z"));
    assert_eq!(
        page.canonical.as_ref().map(Url::as_str),
        Some("https://blog.example.com/posts/rate-limits")
    );
    assert!(page.markdown.starts_with("# Rate limits explained\n\n"), "{}", page.markdown);
}

#[test]
fn metadata_from_json_ld_and_time() {
    let head = r#"<script type="application/ld+json">
        {"@context":"https://schema.org","@type":"BlogPosting","headline":"Buckets",
         "datePublished":"2023-11-02T08:00:00Z","dateModified":"2023-12-01",
         "author":{"@type":"Person","name":"Grace Hopper"},
         "publisher":{"@type":"Organization","name":"Example Press"}}</script>"#;
    let page = run(&page_with(head, &article()));
    assert_eq!(page.title.as_deref(), Some("Buckets"));
    assert_eq!(page.published.as_deref(), Some("2023-11-02T08:00:00Z"));
    assert_eq!(page.modified.as_deref(), Some("2023-12-01"));
    assert_eq!(page.author.as_deref(), Some("Grace Hopper"));
    assert_eq!(page.site_name.as_deref(), Some("Example Press"));

    let timed = format!(r#"<time datetime="2022-01-02T03:04:05Z">Jan 2</time>{}"#, article());
    let html = page_with(r#"<meta http-equiv="content-language" content="de_DE">"#, &timed)
        .replace(r#"<html lang="en">"#, "<html>");
    let page = run(&html);
    assert_eq!(page.published.as_deref(), Some("2022-01-02T03:04:05Z"));
    assert_eq!(page.language.as_deref(), Some("de-DE"));
}

#[test]
fn og_locale_gives_language() {
    let html = page_with(r#"<meta property="og:locale" content="pt_BR">"#, &article())
        .replace(r#"<html lang="en">"#, "<html>");
    assert_eq!(run(&html).language.as_deref(), Some("pt-BR"));
}

#[test]
fn title_is_not_repeated_when_the_body_starts_with_it() {
    let md = run(&page_with("", &article())).markdown;
    assert_eq!(md.matches("Rate limits").count(), 1, "{md}");
}

#[test]
fn empty_and_boilerplate_only_pages_have_too_little_content() {
    for html in ["", "<html><body></body></html>", &page_with("", "<p>Short.</p>")] {
        match extract(html, &page_url(), &ExtractOptions::default()) {
            Err(ExtractError::NotEnoughContent { min, .. }) => assert_eq!(min, 50),
            other => panic!("expected NotEnoughContent, got {other:?}"),
        }
    }
}

#[test]
fn soft_404_is_an_error_page() {
    let html = r#"<html><head><title>Page not found | Example</title></head><body>
        <nav><a href="/">Home</a></nav><h1>404</h1>
        <p>Sorry, the page you are looking for has moved or never existed. Try the search
        box above, or go back to the home page and browse the latest posts from there.
        Our team has been notified and will fix broken links where they can. Thanks for
        your patience while we tidy things up around here and keep the site running.</p>
        </body></html>"#;
    let error = extract(html, &page_url(), &ExtractOptions::default()).unwrap_err();
    assert_eq!(error.skip_reason(), "error_page");
    assert!(
        matches!(&error, ExtractError::ErrorPage { reason } if reason.contains("Page not found"))
    );
}

#[test]
fn long_article_about_errors_is_kept() {
    let body = format!("<h1>Fixing 404 errors</h1>{}", article().repeat(3));
    let html = page_with("", &body).replace("Rate limits | Example Blog", "404 errors | Example");
    assert!(extract(&html, &page_url(), &ExtractOptions::default()).is_ok());
}

#[test]
fn skip_reasons_are_stable() {
    assert_eq!(
        ExtractError::NotEnoughContent { words: 1, min: 2 }.skip_reason(),
        "too_little_content"
    );
    assert_eq!(ExtractError::ErrorPage { reason: String::new() }.skip_reason(), "error_page");
    assert_eq!(ExtractError::TooLarge { elements: 2, max: 1 }.skip_reason(), "too_large");
    let message = ExtractError::NotEnoughContent { words: 3, min: 50 }.to_string();
    assert_eq!(message, "main content has 3 words, fewer than the minimum of 50");
}

#[test]
fn element_limit_is_enforced() {
    let html = page_with("", &article());
    let options = ExtractOptions { max_elements: 10, ..ExtractOptions::default() };
    let error = extract(&html, &page_url(), &options).unwrap_err();
    assert!(matches!(error, ExtractError::TooLarge { max: 10, .. }), "{error:?}");
}

#[test]
fn documentation_page_keeps_code_and_drops_chrome() {
    let html = include_str!("pages/sphinx_docs.html");
    let url = Url::parse("https://docs.example.org/en/latest/install.html").unwrap();
    let page = extract(html, &url, &ExtractOptions::default()).unwrap();
    let md = &page.markdown;

    assert_eq!(page.title.as_deref(), Some("Installation"));
    assert!(md.starts_with("# Installation\n\nMyLib supports Python 3.9"), "{md}");
    assert!(md.contains("```console\n$ python -m pip install mylib\n```"), "{md}");
    assert!(md.contains("```python\nimport mylib\n# check the version\n"), "{md}");
    assert!(md.contains("## From source\n"), "{md}");
    assert!(md.contains("[editable mode](https://docs.example.org/en/latest/usage.html#editable)"));
    for chrome in ["¶", "API reference", "Previous", "Copyright", "Built with Sphinx", "»"] {
        assert!(!md.contains(chrome), "{chrome:?} leaked into:\n{md}");
    }
}

#[test]
fn mdbook_chapter_is_titled_by_its_chapter_not_the_book() {
    let html = include_str!("pages/mdbook_chapter.html");
    let url = Url::parse("https://harbour.example/book/ch03-remarks.html").unwrap();
    let page = extract(html, &url, &ExtractOptions::default()).unwrap();
    let md = &page.markdown;

    assert_eq!(page.title.as_deref(), Some("Remarks in Source"));
    assert!(md.starts_with("# Remarks in Source\n\nEvery harbour log"), "{md}");
    assert_eq!(md.matches("Remarks in Source").count(), 1, "{md}");
    assert!(md.contains("\n### Where they go\n"), "self-anchor unwrapped: {md}");
    assert!(
        md.contains("[tide tables](https://harbour.example/book/ch04-tides.html#tables)"),
        "links to other pages stay: {md}"
    );
    assert!(!md.contains("[]("), "icon-only links dropped: {md}");
    for chrome in ["Harbour Handbook", "Keyboard shortcuts", "Mooring Lines"] {
        assert!(!md.contains(chrome), "{chrome:?} leaked into:\n{md}");
    }
}

#[test]
fn docs_site_page_drops_the_site_name_heading_and_permalinks() {
    let html = include_str!("pages/docs_site.html");
    let url = Url::parse("https://lantern.example/docs/configuration").unwrap();
    let page = extract(html, &url, &ExtractOptions::default()).unwrap();
    let md = &page.markdown;

    assert_eq!(page.title.as_deref(), Some("Configuration"));
    assert!(md.starts_with("# Configuration\n\nLantern reads"), "{md}");
    assert_eq!(md.matches("Configuration").count(), 1, "no doubled heading: {md}");
    assert!(md.contains("\n## The file\n"), "{md}");
    assert!(md.contains("\n## Environment\n"), "{md}");
    assert!(!md.contains("#the-file") && !md.contains("#environment"), "{md}");
    assert!(!md.contains('🔗') && !md.contains("hash-link"), "{md}");
    assert!(md.contains("| Key     | Default | Meaning"), "first row promoted to a header: {md}");
    assert_eq!(page.published, None, "the sidebar date is another page's");
}

#[test]
fn title_segments_name_the_page_when_the_heading_is_the_site() {
    // No main container: the header h1 equals the site segment, and no
    // other h1 exists, so the page segment of the title is the title.
    let html = format!(
        r#"<html><head><title>Sailing | Tide Tables | Harbour Site</title></head><body>
        <header><h1>Harbour Site</h1></header><div class="text"><h2>Sailing</h2><p>{FILLER}</p><p>{FILLER}</p></div></body></html>"#
    );
    let page = run(&html);
    assert_eq!(page.title.as_deref(), Some("Sailing | Tide Tables"));

    // Without a main container or chrome around it, a heading equal to the
    // last segment may be the page's own (a site-first title).
    let site_first = html
        .replace("Sailing | Tide Tables | Harbour Site", "Harbour Site | Sailing")
        .replace("<header><h1>Harbour Site</h1></header>", "<h1>Sailing</h1>");
    assert_eq!(run(&site_first).title.as_deref(), Some("Sailing"));
}

#[test]
fn a_demoted_page_heading_is_not_doubled() {
    let html = format!(
        "<html><head><title>Doc</title></head><body><article><h1>Token buckets</h1><p>{FILLER}</p><p>{FILLER}</p></article></body></html>"
    );
    let page = run(&html);
    assert_eq!(page.title.as_deref(), Some("Token buckets"));
    assert!(page.markdown.starts_with("# Token buckets\n\nA crawler"), "{}", page.markdown);
    assert_eq!(page.markdown.matches("Token buckets").count(), 1, "{}", page.markdown);

    let same = html.replace("<title>Doc</title>", "<title>Token buckets</title>");
    let page = run(&same);
    assert!(page.markdown.starts_with("# Token buckets\n\nA crawler"), "{}", page.markdown);
    assert_eq!(page.markdown.matches("Token buckets").count(), 1, "{}", page.markdown);
}

#[test]
fn line_breaks_inside_pre_keep_lines_apart() {
    let html = format!(
        "<html><body><article><h1>T</h1><p>{FILLER}</p><p>{FILLER}</p><pre class=\"language-sh\">line one<br>line two<br/>line three</pre><p>{FILLER}</p></article></body></html>"
    );
    let md = run(&html).markdown;
    assert!(md.contains("```sh\nline one\nline two\nline three\n```"), "{md}");
}

#[test]
fn a_sidebar_date_is_not_the_publication_date() {
    let html = format!(
        "<html><body><article><h1>T</h1><p>{FILLER}</p><p>{FILLER}</p></article><aside><h3>Latest</h3><ul><li><a href=/x>Other post</a> <time datetime=\"2019-01-01\">Jan 1</time></li></ul></aside></body></html>"
    );
    assert_eq!(run(&html).published, None);

    let marked = html.replace("<time datetime", "<time itemprop=\"datePublished\" datetime");
    assert_eq!(run(&marked).published.as_deref(), Some("2019-01-01"), "explicitly marked");
    let in_header = html.replace(
        "<article><h1>T</h1>",
        "<article><header><h1>T</h1><time datetime=\"2024-02-03\">Feb 3</time></header>",
    );
    assert_eq!(run(&in_header).published.as_deref(), Some("2024-02-03"));
}

#[test]
fn tables_without_header_cells_become_markdown_tables() {
    let rows: String = (0..5)
        .map(|i| format!("<tr><td>key{i}</td><td>value {i}</td><td>note {i}</td></tr>"))
        .collect();
    let html = format!(
        "<html><head><title>Doc</title></head><body><article><h1>T</h1><p>{FILLER}</p><table>{rows}</table><p>{FILLER}</p></article></body></html>"
    );
    let md = run(&html).markdown;
    assert!(
        md.contains("| key0 | value 0 | note 0 |\n| ---- | ------- | ------ |\n| key1 |"),
        "{md}"
    );

    let layout = html.replace(&rows, "<tr><td>Only a single layout cell here</td></tr>");
    let md = run(&layout).markdown;
    assert!(!md.contains('|'), "{md}");
}
