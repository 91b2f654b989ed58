//! Extracts one saved page and prints its metadata and Markdown.
//!
//! `cargo run -p page-extract --example extract_file -- page.html https://example.com/page`
//! (a `.gz` file is decompressed first).

use std::io::Read;

use page_extract::{ExtractOptions, extract};
use url::Url;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(url)) = (args.next(), args.next()) else {
        return Err("usage: extract_file <page.html[.gz]> <url>".into());
    };

    let bytes = std::fs::read(&path)?;
    let html = if path.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text)?;
        text
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };

    let page = extract(&html, &Url::parse(&url)?, &ExtractOptions::default())?;
    println!("title:       {:?}", page.title);
    println!("description: {:?}", page.description);
    println!("language:    {:?}", page.language);
    println!("canonical:   {:?}", page.canonical.as_ref().map(Url::as_str));
    println!("published:   {:?}", page.published);
    println!("modified:    {:?}", page.modified);
    println!("author:      {:?}", page.author);
    println!("site_name:   {:?}", page.site_name);
    println!("words:       {}\n", page.word_count);
    println!("{}", page.markdown);
    Ok(())
}
