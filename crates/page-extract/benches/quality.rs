//! Extraction quality on a gold-standard corpus, candidates side by side.
//!
//! Corpus: the article-extraction-benchmark (181 news and blog pages with
//! the human-marked article text). Each candidate extracts every page; the
//! text (Markdown syntax, link targets and images stripped) is scored
//! against the gold `articleBody` as a bag of lowercase Unicode words:
//! precision, recall and F1 per page, then averaged over pages (macro) and
//! over all words (micro). Time per page is measured in the same run.
//!
//! Set `AEB_DUMP=<dir>` to also write every candidate's texts there as
//! `<name>.json` in the corpus's output format, for its `evaluate.py`.
//!
//! Run: `AEB_DIR=/path/to/article-extraction-benchmark cargo bench -p page-extract --bench quality`
//! (add `--features bench-trafilatura` to include rs-trafilatura). Without
//! the corpus it prints how to get it and exits successfully, so a
//! workspace-wide `cargo bench` does not fail.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use page_extract::{ExtractOptions, extract};
use unicode_segmentation::UnicodeSegmentation;
use url::Url;

const HOW_TO_GET: &str = "\
quality bench: corpus not found.
  git clone --depth 1 https://github.com/scrapinghub/article-extraction-benchmark /tmp/aeb
  AEB_DIR=/tmp/aeb cargo bench -p page-extract --bench quality
(AEB_DIR must contain ground-truth.json and html/*.html.gz; the corpus is
not part of this repository.)";

struct Page {
    key: String,
    url: Url,
    html: String,
    gold: HashMap<String, usize>,
}

/// One extractor under test: name and a function from page to plain text.
struct Candidate {
    name: &'static str,
    run: fn(&Page) -> String,
}

#[derive(Default)]
struct Score {
    precision: f64,
    recall: f64,
    f1: f64,
    common: usize,
    predicted: usize,
    gold: usize,
    elapsed: Duration,
    pages: usize,
    empty: usize,
}

fn main() {
    let Some(dir) = corpus_dir() else {
        println!("{HOW_TO_GET}");
        return;
    };
    let pages = match load_corpus(&dir) {
        Ok(pages) => pages,
        Err(error) => {
            eprintln!("quality bench: cannot read corpus at {}: {error}", dir.display());
            std::process::exit(1);
        }
    };
    println!("corpus: {} pages from {}", pages.len(), dir.display());

    let candidates = candidates();
    let mut scores: Vec<Score> = candidates.iter().map(|_| Score::default()).collect();
    let mut outputs: Vec<serde_json::Map<String, serde_json::Value>> =
        candidates.iter().map(|_| serde_json::Map::new()).collect();
    let mut worst: Vec<(f64, &str)> = Vec::new();
    for page in &pages {
        // Candidates take turns on each page, so machine noise hits all alike.
        for (index, candidate) in candidates.iter().enumerate() {
            let started = Instant::now();
            let text = (candidate.run)(page);
            scores[index].elapsed += started.elapsed();
            let f1 = scores[index].add(&bag_of_words(&text), &page.gold);
            if index == 0 {
                worst.push((f1, &page.key));
            }
            outputs[index].insert(page.key.clone(), serde_json::json!({ "articleBody": text }));
        }
    }

    report(&candidates, &scores);
    if let Some(dump) = std::env::var_os("AEB_DUMP") {
        dump_outputs(Path::new(&dump), &candidates, outputs);
    }
    worst.sort_by(|a, b| a.0.total_cmp(&b.0));
    let listed: Vec<String> =
        worst.iter().take(8).map(|(f1, key)| format!("{:.2} {}", f1, &key[..12])).collect();
    println!("\npage-extract worst pages: {}", listed.join(", "));
}

/// Writes each candidate's texts in the corpus's own `output/*.json` shape,
/// so its `evaluate.py` (4-word shingles) can score them too.
fn dump_outputs(
    dir: &Path,
    candidates: &[Candidate],
    outputs: Vec<serde_json::Map<String, serde_json::Value>>,
) {
    for (candidate, output) in candidates.iter().zip(outputs) {
        let path = dir.join(format!("{}.json", candidate.name.replace([' ', '-'], "_")));
        let json = serde_json::Value::Object(output).to_string();
        if let Err(error) = std::fs::write(&path, json) {
            eprintln!("quality bench: cannot write {}: {error}", path.display());
        }
    }
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .or_else(|| std::env::var("AEB_DIR").ok())
        .map(PathBuf::from)?;
    dir.join("ground-truth.json").is_file().then_some(dir)
}

fn load_corpus(dir: &Path) -> Result<Vec<Page>, Box<dyn std::error::Error>> {
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ground-truth.json"))?)?;
    let entries = truth.as_object().ok_or("ground-truth.json is not an object")?;

    let mut pages = Vec::with_capacity(entries.len());
    for (key, entry) in entries {
        let body = entry["articleBody"].as_str().unwrap_or_default();
        let url = entry["url"].as_str().and_then(|u| Url::parse(u).ok());
        let url = url.unwrap_or_else(|| Url::parse("https://example.com/").expect("valid URL"));

        let mut html = String::new();
        let file = std::fs::File::open(dir.join("html").join(format!("{key}.html.gz")))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes)?;
        html.push_str(&String::from_utf8_lossy(&bytes));

        pages.push(Page { key: key.clone(), url, html, gold: bag_of_words(body) });
    }
    pages.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(pages)
}

fn candidates() -> Vec<Candidate> {
    vec![
        Candidate { name: "page-extract", run: run_page_extract },
        Candidate { name: "dom_smoothie text", run: run_dom_smoothie },
        #[cfg(feature = "bench-trafilatura")]
        Candidate { name: "rs-trafilatura", run: run_trafilatura },
    ]
}

/// Our pipeline with the skip rules off, so every page is scored. The
/// title heading is left out because the gold text has no headline.
fn run_page_extract(page: &Page) -> String {
    let options = ExtractOptions {
        min_words: 0,
        error_page_max_words: 0,
        prepend_title: false,
        ..ExtractOptions::default()
    };
    extract(&page.html, &page.url, &options)
        .map(|e| strip_markdown(&e.markdown))
        .unwrap_or_default()
}

/// The Readability port alone, its plain-text output.
fn run_dom_smoothie(page: &Page) -> String {
    let readability =
        dom_smoothie::Readability::new(page.html.as_str(), Some(page.url.as_str()), None);
    readability
        .and_then(|mut r| r.parse())
        .map(|article| article.text_content.to_string())
        .unwrap_or_default()
}

#[cfg(feature = "bench-trafilatura")]
fn run_trafilatura(page: &Page) -> String {
    let options = rs_trafilatura::Options {
        url: Some(page.url.to_string()),
        ..rs_trafilatura::Options::default()
    };
    rs_trafilatura::extract_with_options(&page.html, &options)
        .map(|result| result.content_text)
        .unwrap_or_default()
}

/// Drops what Markdown adds to the text: image syntax entirely (the gold
/// text has no alt text), link targets, and fence info strings. Other
/// syntax is punctuation, which tokenizing ignores.
fn strip_markdown(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(start) = rest.find("](") {
        let before = &rest[..start];
        let image_start = before.rfind("![");
        let link_text_start = before.rfind('[');
        match (image_start, link_text_start) {
            (Some(image), Some(link)) if image + 1 == link => text.push_str(&before[..image]),
            _ => text.push_str(before),
        }
        let after = &rest[start + 2..];
        rest = after.find(')').map_or("", |end| &after[end + 1..]);
    }
    text.push_str(rest);
    text.lines().filter(|line| !line.trim_start().starts_with("```")).collect::<Vec<_>>().join("\n")
}

fn bag_of_words(text: &str) -> HashMap<String, usize> {
    let mut bag = HashMap::new();
    for word in text.unicode_words() {
        let word = word.trim_matches('_').to_lowercase();
        if word.chars().any(char::is_alphanumeric) {
            *bag.entry(word).or_insert(0) += 1;
        }
    }
    bag
}

impl Score {
    /// Adds one page and returns its F1.
    fn add(&mut self, predicted: &HashMap<String, usize>, gold: &HashMap<String, usize>) -> f64 {
        let common: usize =
            predicted.iter().map(|(word, n)| (*n).min(*gold.get(word).unwrap_or(&0))).sum();
        let predicted_total: usize = predicted.values().sum();
        let gold_total: usize = gold.values().sum();

        let precision = ratio(common, predicted_total);
        let recall = ratio(common, gold_total);
        let f1 = harmonic(precision, recall);
        self.precision += precision;
        self.recall += recall;
        self.f1 += f1;
        self.common += common;
        self.predicted += predicted_total;
        self.gold += gold_total;
        self.pages += 1;
        self.empty += usize::from(predicted_total == 0);
        f1
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

fn harmonic(p: f64, r: f64) -> f64 {
    if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) }
}

fn report(candidates: &[Candidate], scores: &[Score]) {
    println!(
        "\n{:<20} {:>7} {:>7} {:>7}   {:>7} {:>7} {:>7}   {:>6} {:>9}",
        "candidate", "F1", "P", "R", "microF1", "microP", "microR", "empty", "ms/page"
    );
    for (candidate, s) in candidates.iter().zip(scores) {
        let n = s.pages.max(1) as f64;
        let micro_p = ratio(s.common, s.predicted);
        let micro_r = ratio(s.common, s.gold);
        println!(
            "{:<20} {:>7.3} {:>7.3} {:>7.3}   {:>7.3} {:>7.3} {:>7.3}   {:>6} {:>9.1}",
            candidate.name,
            s.f1 / n,
            s.precision / n,
            s.recall / n,
            harmonic(micro_p, micro_r),
            micro_p,
            micro_r,
            s.empty,
            s.elapsed.as_secs_f64() * 1000.0 / n,
        );
    }
}
