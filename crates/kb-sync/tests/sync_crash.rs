//! Crash safety: a sync is killed at every request it makes, then run
//! again; Dify must end up with exactly one document per page, and
//! documents that existed at the kill keep their ids.
//!
//! Three kinds of kill, each at request `cut` (counted from 0, the key
//! check, in the order requests reach the server):
//!
//! - `Before`: from request `cut` on every request stalls (never applied)
//!   and the sync future is dropped once the stall is reached.
//! - `ReplyLost`: request `cut` is applied and its connection dropped, so
//!   the sink sees an error (safe requests are retried into the stall).
//! - `AfterApplied`: request `cut` is applied and its answer held by a
//!   proxy, and the sync is dropped then: the process died after Dify did
//!   the work and before the sink could write it down.
//!
//! Besides first syncs and updates, the cuts cover a run rebuilding lost
//! state (listing documents, one of them disabled by a user) and a run
//! bringing back pages whose documents pruning had disabled.

mod sync_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kb_sync::dify_sink::{DifySinkOptions, PruneMode, PruneOptions};
use kb_sync::naming::document_name;
use kb_sync::page::PageRecord;
use sync_support::proxy::{Proxy, Verdict};
use sync_support::*;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule};

const STALL: Fault = Fault::Stall(Duration::from_secs(3600));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Before,
    ReplyLost,
    AfterApplied,
}

const KILLS: [Kill; 3] = [Kill::Before, Kill::ReplyLost, Kill::AfterApplied];

fn kill_plan(cut: u64, reply_lost: bool) -> FaultPlan {
    let mut rules = Vec::new();
    if reply_lost {
        rules.push(FaultRule::always(None, Fault::DropAfter).with_skip(cut).with_limit(1));
    }
    rules.push(FaultRule::always(None, STALL).with_skip(cut));
    FaultPlan::new(0, rules)
}

/// Runs a sync that is killed at request `cut` (counted from now) the way
/// `kill` says; `true` if it finished first (the cut lies past its last
/// request).
async fn sync_killed(
    server: &DifyServer,
    dir: &Path,
    pages: &[PageRecord],
    options: DifySinkOptions,
    cut: u64,
    kill: Kill,
) -> bool {
    if kill == Kill::AfterApplied {
        return sync_killed_after_applied(server, dir, pages, options, cut).await;
    }
    server.set_faults(kill_plan(cut, kill == Kill::ReplyLost));
    let run = async {
        let sink = sink(server, dir, options).await;
        sync_all(&sink, pages).await
    };
    let stalled = async {
        while server.stats().faults("stall") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let requests sent alongside reach the stall too.
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let finished = tokio::select! {
        _ = run => true,
        () = stalled => false,
    };
    server.clear_faults();
    finished
}

async fn sync_killed_after_applied(
    server: &DifyServer,
    dir: &Path,
    pages: &[PageRecord],
    options: DifySinkOptions,
    cut: u64,
) -> bool {
    let rule = Arc::new(move |index: u64, _: &proxy::Request| match index.cmp(&cut) {
        std::cmp::Ordering::Less => Verdict::Forward,
        std::cmp::Ordering::Equal => Verdict::ForwardAndHold,
        std::cmp::Ordering::Greater => Verdict::Hold,
    });
    let proxy = Proxy::start(server.addr(), rule).await;
    let run = async {
        let client = proxied(server, &proxy).build().unwrap();
        let sink = sink_with(client, dir, options).await;
        sync_all(&sink, pages).await
    };
    let applied = async {
        while proxy.held() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::select! {
        _ = run => true,
        () = applied => false,
    }
}

/// Requests a clean run makes, after `before` was synced.
async fn requests_of_clean_run(pages: &[PageRecord], before: &[PageRecord]) -> u64 {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    if !before.is_empty() {
        sync_all(&sink(&server, dir.path(), options()).await, before).await;
    }
    let start = server.stats().requests_total;
    sync_all(&sink(&server, dir.path(), options()).await, pages).await;
    server.stats().requests_total - start
}

fn assert_ids_kept(at_kill: &BTreeMap<String, String>, after: &BTreeMap<String, String>, cut: u64) {
    for (name, id) in at_kill {
        assert_eq!(after.get(name), Some(id), "cut {cut}: {name} was re-created");
    }
}

fn delete_store(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("state.sqlite3{suffix}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_killed_at_any_request_finishes_on_the_next_run() {
    let pages = pages(7, 1);
    let total = requests_of_clean_run(&pages, &[]).await;
    assert!(total >= 20, "a first sync of 7 pages makes {total} requests");

    for cut in 0..total {
        for kill in KILLS {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let finished = sync_killed(&server, dir.path(), &pages, options(), cut, kill).await;
            assert!(!finished, "cut {cut} ({kill:?}) lies inside the run");
            let at_kill = ids_by_name(&server);

            let sink = sink(&server, dir.path(), options()).await;
            sync_all(&sink, &pages).await;

            assert_in_step(&server, &pages);
            assert_ids_kept(&at_kill, &ids_by_name(&server), cut);
            assert_store_consistent(&server, sink.store());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_run_killed_at_any_request_finishes_on_the_next_run() {
    let first = pages(6, 1);
    let mut second = pages(6, 1);
    second[1] = page(1, 2);
    second[4] = page(4, 2);
    let total = requests_of_clean_run(&second, &first).await;

    for cut in 0..total {
        for kill in KILLS {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            sync_all(&sink(&server, dir.path(), options()).await, &first).await;
            let ids = ids_by_name(&server);

            let finished = sync_killed(&server, dir.path(), &second, options(), cut, kill).await;
            assert!(!finished, "cut {cut} ({kill:?}) lies inside the run");
            sync_all(&sink(&server, dir.path(), options()).await, &second).await;

            assert_in_step(&server, &second);
            assert_eq!(ids_by_name(&server), ids, "cut {cut} ({kill:?}): no document re-created");
        }
    }
}

/// The documents of a knowledge base of 101 pages (two listing calls),
/// page 2 disabled by a user; the store is lost and the next run brings
/// changes to pages 2 and 4.
async fn lost_state_setup(server: &DifyServer, dir: &Path) -> (Vec<PageRecord>, Vec<PageRecord>) {
    let first = pages(101, 1);
    let setup = DifySinkOptions { metadata_batch_size: 50, ..options() };
    sync_all(&sink(server, dir, setup).await, &first).await;
    server.complete_all_indexing();
    let dataset = server.dataset_by_name(KB).unwrap();
    let disabled = ids_by_name(server)[&document_name(&first[2].url)].clone();
    server.set_document_enabled(&dataset.id, &disabled, false);
    delete_store(dir);

    let mut second = first.clone();
    second[2] = page(2, 2);
    second[4] = page(4, 2);
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_lost_state_killed_at_any_request_finishes_on_the_next_run() {
    let total = {
        let server = DifyServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (_, second) = lost_state_setup(&server, dir.path()).await;
        let start = server.stats().requests_total;
        sync_all(&sink(&server, dir.path(), options()).await, &second).await;
        server.stats().requests_total - start
    };
    assert!(total >= 5, "the run makes {total} requests");

    for cut in 0..total {
        for kill in KILLS {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let (first, second) = lost_state_setup(&server, dir.path()).await;
            let ids = ids_by_name(&server);

            let finished = sync_killed(&server, dir.path(), &second, options(), cut, kill).await;
            // A lost reply to an update is not retried; the run may end
            // without reaching another request.
            assert!(
                !finished || kill == Kill::ReplyLost,
                "cut {cut} ({kill:?}) lies inside the run"
            );
            let sink = sink(&server, dir.path(), options()).await;
            sync_all(&sink, &second).await;

            // Page 2's document stays disabled and unchanged, and is not
            // duplicated by a same-name create; page 4 is updated in place.
            let mut expected = second.clone();
            expected[2] = first[2].clone();
            assert_in_step(&server, &expected);
            assert_eq!(ids_by_name(&server), ids, "cut {cut} ({kill:?}): no document re-created");
            let disabled = documents(&server).into_iter().filter(|d| !d.enabled).count();
            assert_eq!(disabled, 1, "cut {cut} ({kill:?})");
            assert_store_consistent(&server, sink.store());
        }
    }
}

fn disabling() -> DifySinkOptions {
    let prune = PruneOptions {
        enabled: true,
        mode: PruneMode::Disable,
        after_missed_runs: 1,
        ..PruneOptions::default()
    };
    DifySinkOptions { prune, ..options() }
}

/// Four pages; pruning disabled the documents of pages 2 and 3. They come
/// back, page 3 changed.
async fn disabled_setup(server: &DifyServer, dir: &Path) -> Vec<PageRecord> {
    let first = pages(4, 1);
    sync_all(&sink(server, dir, disabling()).await, &first).await;
    let gone = sink(server, dir, disabling()).await;
    gone.page_gone(&first[2].url).unwrap();
    gone.page_gone(&first[3].url).unwrap();
    gone.finish(false).await.unwrap();
    drop(gone);
    server.complete_all_indexing();
    let mut back = first;
    back[3] = page(3, 2);
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_back_after_pruning_disabled_them_survive_a_kill_at_any_request() {
    let total = {
        let server = DifyServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let back = disabled_setup(&server, dir.path()).await;
        let start = server.stats().requests_total;
        sync_all(&sink(&server, dir.path(), disabling()).await, &back).await;
        server.stats().requests_total - start
    };
    assert!(total >= 5, "the run makes {total} requests");

    for cut in 0..total {
        for kill in KILLS {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let back = disabled_setup(&server, dir.path()).await;
            let ids = ids_by_name(&server);
            assert_eq!(documents(&server).iter().filter(|d| !d.enabled).count(), 2);

            let finished = sync_killed(&server, dir.path(), &back, disabling(), cut, kill).await;
            assert!(
                !finished || kill == Kill::ReplyLost,
                "cut {cut} ({kill:?}) lies inside the run"
            );
            server.complete_all_indexing();
            let sink = sink(&server, dir.path(), disabling()).await;
            sync_all(&sink, &back).await;

            assert_in_step(&server, &back);
            assert!(documents(&server).iter().all(|d| d.enabled), "cut {cut} ({kill:?})");
            assert_eq!(ids_by_name(&server), ids, "cut {cut} ({kill:?}): no document re-created");
            assert_store_consistent(&server, sink.store());
        }
    }
}
