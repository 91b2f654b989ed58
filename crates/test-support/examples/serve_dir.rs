//! Serves a folder as a website on 127.0.0.1 until Ctrl-C (or SIGTERM):
//!
//! ```text
//! cargo run -p test-support --example serve_dir -- demo/site [PORT]
//! ```
//!
//! The first line on stdout is the base URL, so a script can read it and
//! point a crawl at it; `scripts/demo` does. Without a port, or when the
//! port is taken, the OS chooses one. Text files may use `__BASE__` for the
//! base URL (see `test_support::static_site`).

use std::path::PathBuf;

use test_support::static_site::serve_dir;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: serve_dir <folder> [port]");
        std::process::exit(2);
    };
    let port = args.next().and_then(|p| p.to_str()?.parse::<u16>().ok()).unwrap_or(0);

    let site = match serve_dir(&dir, port).await {
        Err(error) if port != 0 && error.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("serve_dir: port {port} is in use; serving on another one");
            serve_dir(&dir, 0).await?
        }
        other => other?,
    };
    println!("{}", site.base_url());
    tokio::signal::ctrl_c().await
}
