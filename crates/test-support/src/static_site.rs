//! A folder of static files served on loopback: the offline demo site
//! (`demo/site` in the repository) and any test that wants real files.
//!
//! Files are read once at start. Text files may contain the placeholder
//! [`BASE_PLACEHOLDER`], replaced by the server's base URL (without the
//! trailing slash) so that sitemaps and canonical links can be absolute
//! although the port is only known once the server is bound. Every file
//! carries an `ETag` and a `Last-Modified` header, so a second crawl gets
//! 304 answers as it would from a real web server, and a folder path is
//! also served from its `index.html`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::site::{Route, RunningSite, TestSite};

/// Replaced in text files by the base URL, e.g. `http://127.0.0.1:8123`.
pub const BASE_PLACEHOLDER: &str = "__BASE__";

/// Serves every file under `dir` on `127.0.0.1:port` (0: the OS chooses).
///
/// # Errors
///
/// When `dir` or a file under it cannot be read, or the port is taken.
pub async fn serve_dir(dir: &Path, port: u16) -> io::Result<RunningSite> {
    let files = collect_files(dir)?;
    let site = TestSite::new().start_on(port).await?;
    let base = site.base_url().as_str().trim_end_matches('/').to_owned();

    for file in files {
        let relative = file.strip_prefix(dir).map_err(io::Error::other)?;
        let url_path = url_path(relative);
        let route = file_route(&file, &base)?;
        if let Some(folder) = url_path.strip_suffix("index.html") {
            site.set_route(folder, route.clone());
        }
        site.set_route(&url_path, route);
    }
    Ok(site)
}

/// All regular files under `dir`, depth first.
fn collect_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `guide/install.html` -> `/guide/install.html`, with `/` separators on
/// every platform.
fn url_path(relative: &Path) -> String {
    let parts: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect();
    format!("/{}", parts.join("/"))
}

fn file_route(file: &Path, base: &str) -> io::Result<Route> {
    let bytes = std::fs::read(file)?;
    let modified = std::fs::metadata(file)?.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let content_type = content_type(file);

    let body = if content_type.starts_with("text/") || content_type.ends_with("xml") {
        String::from_utf8_lossy(&bytes).replace(BASE_PLACEHOLDER, base).into_bytes()
    } else {
        bytes
    };
    let etag = format!("\"{:016x}\"", fnv1a(&body));
    Ok(Route::bytes(content_type, body)
        .with_header("etag", &etag)
        .with_header("last-modified", &httpdate::fmt_http_date(modified)))
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or_default() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "json" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// A small stable content hash for the `ETag`; strength does not matter
/// here, only that a changed file gets a different tag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_use_forward_slashes() {
        assert_eq!(url_path(Path::new("guide/install.html")), "/guide/install.html");
        assert_eq!(url_path(Path::new("index.html")), "/index.html");
    }

    #[test]
    fn changed_content_changes_the_tag() {
        assert_ne!(fnv1a(b"one"), fnv1a(b"two"));
        assert_eq!(fnv1a(b"same"), fnv1a(b"same"));
    }
}
