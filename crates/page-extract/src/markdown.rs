//! HTML fragment to Markdown, and the final tidy-up of the Markdown text.
//!
//! Conversion is htmd (a turndown port: GFM tables, fenced code with the
//! `language-*` class as info string). Its output can carry runs of blank
//! lines and whitespace-only lines where empty containers were, and a link
//! with nothing to show as `[](url)`; the tidy pass removes those outside
//! code fences, where every character is content.

use htmd::HtmlToMarkdown;
use htmd::options::{BulletListMarker, HrStyle, Options};

/// Tags that never carry readable text, skipped even if cleaning missed them.
const SKIPPED_TAGS: [&str; 8] =
    ["script", "style", "noscript", "template", "iframe", "svg", "button", "form"];

/// Converts cleaned content HTML to tidy Markdown.
pub(crate) fn to_markdown(html: &str) -> String {
    let converter = HtmlToMarkdown::builder()
        .options(Options {
            bullet_list_marker: BulletListMarker::Dash,
            hr_style: HrStyle::Dashes,
            ul_bullet_spacing: 1,
            ol_number_spacing: 1,
            ..Options::default()
        })
        .skip_tags(SKIPPED_TAGS.to_vec())
        .build();

    match converter.convert(html) {
        Ok(markdown) => tidy(&markdown),
        Err(error) => {
            // htmd parses from memory, so this is unexpected; an empty
            // result is then judged as "too little content".
            tracing::warn!(%error, "markdown conversion failed");
            String::new()
        }
    }
}

/// Collapses blank-line runs to one, empties whitespace-only lines and trims
/// trailing spaces that are not hard breaks, leaving code fences verbatim.
pub(crate) fn tidy(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<String> = None;
    let mut blank_run = 0;

    for line in markdown.lines() {
        if let Some(marker) = &fence {
            push_line(&mut out, line);
            if closes_fence(line, marker) {
                fence = None;
            }
            continue;
        }

        let cleaned = without_empty_links(line);
        let line = cleaned.as_str();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if blank_run > 0 && !out.is_empty() {
            out.push('\n');
        }
        blank_run = 0;

        fence = fence_marker(line);
        push_line(&mut out, keep_hard_break(line));
    }

    out.truncate(out.trim_end().len());
    out
}

/// Removes `[](target)` (a link without text), keeping `![](src)`.
fn without_empty_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("[](") {
        let is_image = rest[..at].ends_with('!');
        let close = rest[at..].find(')').map(|end| at + end + 1);
        match close {
            Some(end) if !is_image => {
                out.push_str(rest[..at].trim_end_matches(' '));
                rest = &rest[end..];
                if out.is_empty() {
                    rest = rest.trim_start();
                }
            }
            _ => {
                let keep = at + 3;
                out.push_str(&rest[..keep]);
                rest = &rest[keep..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// The fence that opens at `line` (three or more backticks or tildes).
fn fence_marker(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let run: String = trimmed.chars().take_while(|c| *c == marker).collect();
    (run.len() >= 3).then_some(run)
}

fn closes_fence(line: &str, marker: &str) -> bool {
    let trimmed = line.trim();
    trimmed.len() >= marker.len() && trimmed.chars().all(|c| marker.starts_with(c))
}

/// A Markdown hard break is two trailing spaces; other trailing whitespace
/// is noise.
fn keep_hard_break(line: &str) -> &str {
    let trimmed = line.trim_end();
    if line.ends_with("  ") && !trimmed.is_empty() {
        line.trim_end_matches(['\t', '\r'])
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::{tidy, to_markdown};

    #[test]
    fn collapses_blank_lines_but_not_inside_fences() {
        let input = "# A\n\n\n\n  \npara  \n\n```\nx\n\n\n\ny\n```\n\n\ntail \n";
        assert_eq!(tidy(input), "# A\n\npara  \n\n```\nx\n\n\n\ny\n```\n\ntail");
    }

    #[test]
    fn links_without_text_are_removed_but_images_without_alt_kept() {
        let input = "[](https://e.com/a) [](https://e.com/b)\n\nSee [](x) this ![](i.png).\n\n```\n[](kept)\n```";
        assert_eq!(tidy(input), "See this ![](i.png).\n\n```\n[](kept)\n```");
    }

    #[test]
    fn converts_core_constructs() {
        let html = "<h2>Sub</h2><ul><li>one</li><li>two</li></ul><ol><li>first</li></ol>\
                    <p><strong>b</strong> <em>i</em> <code>c</code></p><blockquote><p>q</p></blockquote>\
                    <hr><img src=\"https://e.com/i.png\" alt=\"Alt text\">";
        let md = to_markdown(html);
        for expected in [
            "## Sub",
            "- one\n- two",
            "1. first",
            "**b** *i* `c`",
            "> q",
            "- - -",
            "![Alt text](https://e.com/i.png)",
        ] {
            assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
        }
    }

    #[test]
    fn renders_gfm_tables_and_fenced_code() {
        let html = "<table><thead><tr><th>K</th><th>V</th></tr></thead>\
                    <tbody><tr><td>a</td><td>1</td></tr></tbody></table>\
                    <pre><code class=\"language-rust\">let x = 1;\nlet y = 2;</code></pre>";
        let md = to_markdown(html);
        assert!(md.contains("| K | V |"), "{md}");
        assert!(md.contains("| a | 1 |"), "{md}");
        assert!(md.contains("```rust\nlet x = 1;\nlet y = 2;\n```"), "{md}");
    }
}
