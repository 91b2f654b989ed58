//! Crash safety: a sync is killed after every possible number of requests,
//! then run again; Dify must end up with exactly one document per page, and
//! documents that existed at the kill keep their ids.
//!
//! The kill point is made exact with the server's fault plan: from request
//! `cut + 1` on, every request stalls (never applied), and the sync future
//! is dropped once the stall is reached. A second variant first drops the
//! connection after applying request `cut + 1`, so the process dies with a
//! write done in Dify but never recorded.

mod sync_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use kb_sync::page::PageRecord;
use sync_support::*;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule};

const STALL: Fault = Fault::Stall(Duration::from_secs(3600));

fn kill_plan(cut: u64, reply_lost: bool) -> FaultPlan {
    let mut rules = Vec::new();
    if reply_lost {
        rules.push(FaultRule::always(None, Fault::DropAfter).with_skip(cut).with_limit(1));
    }
    rules.push(FaultRule::always(None, STALL).with_skip(cut));
    FaultPlan::new(0, rules)
}

/// Runs a sync that is killed at the plan's stall (counted from now);
/// `true` if it finished first (the cut lies past its last request).
async fn sync_killed(
    server: &DifyServer,
    dir: &Path,
    pages: &[PageRecord],
    plan: FaultPlan,
) -> bool {
    server.set_faults(plan);
    let run = async {
        let sink = sink(server, dir, options()).await;
        sync_all(&sink, pages).await
    };
    let kill = async {
        while server.stats().faults("stall") == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let requests sent alongside reach the stall too.
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let finished = tokio::select! {
        _ = run => true,
        () = kill => false,
    };
    server.clear_faults();
    finished
}

/// Requests a clean run makes.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_killed_at_any_request_finishes_on_the_next_run() {
    let pages = pages(7, 1);
    let total = requests_of_clean_run(&pages, &[]).await;
    assert!(total >= 20, "a first sync of 7 pages makes {total} requests");

    for cut in 0..total {
        for reply_lost in [false, true] {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            let finished =
                sync_killed(&server, dir.path(), &pages, kill_plan(cut, reply_lost)).await;
            assert!(!finished, "cut {cut} lies inside the run");
            let at_kill = ids_by_name(&server);

            sync_all(&sink(&server, dir.path(), options()).await, &pages).await;

            assert_in_step(&server, &pages);
            assert_ids_kept(&at_kill, &ids_by_name(&server), cut);
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
        for reply_lost in [false, true] {
            let server = DifyServer::start().await.unwrap();
            let dir = tempfile::tempdir().unwrap();
            sync_all(&sink(&server, dir.path(), options()).await, &first).await;
            let ids = ids_by_name(&server);

            let finished =
                sync_killed(&server, dir.path(), &second, kill_plan(cut, reply_lost)).await;
            assert!(!finished, "cut {cut} lies inside the run");
            sync_all(&sink(&server, dir.path(), options()).await, &second).await;

            assert_in_step(&server, &second);
            assert_eq!(ids_by_name(&server), ids, "cut {cut}: no document re-created");
        }
    }
}
