//! Hostile and malformed input never panics, whatever it is.

use page_extract::{DEFAULT_MAX_DEPTH, ExtractOptions, extract};
use proptest::prelude::*;
use url::Url;

fn url() -> Url {
    Url::parse("https://example.com/a/b").unwrap()
}

fn survives(html: &str) {
    let _ = extract(html, &url(), &ExtractOptions::default());
}

#[test]
fn binary_garbage() {
    let bytes: Vec<u8> =
        (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    survives(&String::from_utf8_lossy(&bytes));
    survives("\0\0\0<\0html\0>\u{FFFD}\u{202E}");
}

#[test]
fn deeply_nested_tags_are_refused() {
    let depth = 20_000;
    let html = format!("{}<p>deep text</p>{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let error = extract(&html, &url(), &ExtractOptions::default()).unwrap_err();
    assert_eq!(error.skip_reason(), "too_deep");
}

#[test]
fn nesting_just_under_the_limit_fits_a_blocking_thread_stack() {
    // 2 MiB is the stack of tokio's blocking threads, where the pipeline
    // calls `extract`.
    let depth = DEFAULT_MAX_DEPTH - 10;
    let words = "many words of real content here ".repeat(20);
    let html = format!("{}<p>{words}</p>{}", "<div>".repeat(depth), "</div>".repeat(depth));
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || extract(&html, &url(), &ExtractOptions::default()).map(|p| p.word_count));
    let result = handle.map(|thread| thread.join());
    assert!(matches!(result, Ok(Ok(Ok(120)))), "{result:?}");
}

#[test]
fn unclosed_formatting_and_table_soup() {
    survives(&"<b><i><u><span>".repeat(2_000));
    survives(&"<table><tr><td>".repeat(2_000));
}

#[test]
fn invalid_markup() {
    for html in [
        "<html><body><p>unclosed <a href='x'>link <table><td>cell</p></div></span>",
        "<<<>>><!-- unterminated comment <p>text",
        "<pre><code class=\"language-\">x</code></pre><pre class='brush:'>y</pre>",
        "<base href=\"javascript:alert(1)\"><a href=\"http://[::1\">bad</a><img src=\"http://%zz\">",
        "<script type=\"application/ld+json\">{\"@graph\":[[[[[[[[[[[[{}]]]]]]]]]]]]}</script>",
        "<meta property=\"article:published_time\" content=\"9999-99-99T99:99:99Z\">",
        "<link rel=canonical href=\"mailto:x@y\"><html lang=\"!!\">",
    ] {
        survives(html);
    }
}

#[test]
fn five_megabyte_page() {
    let paragraph = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do \
                     eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>";
    let mut html = String::from("<html><head><title>Big</title></head><body><article>");
    while html.len() < 5 * 1024 * 1024 {
        html.push_str(paragraph);
    }
    html.push_str("</article></body></html>");

    let page = extract(&html, &url(), &ExtractOptions::default());
    assert!(page.is_ok_and(|page| page.word_count > 100_000));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_strings_never_panic(html in ".{0,2000}") {
        survives(&html);
    }

    #[test]
    fn arbitrary_tag_soup_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("<div>"), Just("</div>"), Just("<p>"), Just("<pre class=\"lang-x\">"),
                Just("<table><tr><td>"), Just("<a href=\"../x\">"), Just("</a>"), Just("<h1>"),
                Just("<script>"), Just("</script>"), Just("<li>"), Just("text words here "),
                Just("<base href=\"/b/\">"), Just("<img src=\"i.png\" alt=\"a\">"), Just("&amp;"),
            ],
            0..200,
        )
    ) {
        survives(&parts.concat());
    }
}
