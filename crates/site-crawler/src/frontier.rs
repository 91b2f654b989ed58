//! The queue of URLs to fetch: breadth-first by depth, per host.
//!
//! Each host has one FIFO per depth and remembers its shallowest non-empty
//! one, so taking its next URL costs O(1). Across hosts, the next URL is
//! the shallowest, oldest head among the hosts that can start a request
//! now (see [`Frontier::pop_ready`]): a host that is pacing (a crawl
//! delay, a `Retry-After` backoff, a robots.txt retry) or has all its
//! permits in use is passed over instead of holding a global slot while
//! it waits, so one slow host cannot starve the others. Within a host the
//! order stays breadth-first; across hosts it is breadth-first among the
//! hosts that are ready.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;
use url::Url;

use crate::host::host_key;

/// A URL scheduled for fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// Normalized URL.
    pub(crate) url: Url,
    /// Link distance from a start or sitemap URL.
    pub(crate) depth: usize,
    /// The page whose link queued this URL; `None` for start and sitemap
    /// URLs. Shared by all links of one page.
    pub(crate) referrer: Option<Arc<Url>>,
}

/// URLs waiting to be fetched.
#[derive(Debug, Default)]
pub(crate) struct Frontier {
    hosts: HashMap<String, HostQueue>,
    len: usize,
    /// Arrival counter, to keep FIFO order across hosts.
    next_seq: u64,
}

#[derive(Debug, Default)]
struct HostQueue {
    levels: Vec<VecDeque<(u64, Item)>>,
    /// Every level below this one is empty.
    lowest: usize,
    len: usize,
}

impl HostQueue {
    fn push(&mut self, seq: u64, item: Item) {
        let depth = item.depth;
        if self.levels.len() <= depth {
            self.levels.resize_with(depth + 1, VecDeque::new);
        }
        if let Some(level) = self.levels.get_mut(depth) {
            level.push_back((seq, item));
            self.len += 1;
            self.lowest = self.lowest.min(depth);
        }
    }

    /// `(depth, seq)` of the next item, skipping to the shallowest
    /// non-empty level.
    fn head(&mut self) -> Option<(usize, u64)> {
        while let Some(level) = self.levels.get(self.lowest) {
            if let Some((seq, _)) = level.front() {
                return Some((self.lowest, *seq));
            }
            self.lowest += 1;
        }
        None
    }

    fn peek(&mut self) -> Option<&Item> {
        self.head()?;
        self.levels.get(self.lowest)?.front().map(|(_, item)| item)
    }

    fn pop(&mut self) -> Option<Item> {
        self.head()?;
        let (_, item) = self.levels.get_mut(self.lowest)?.pop_front()?;
        self.len -= 1;
        Some(item)
    }
}

impl Frontier {
    pub(crate) fn push(&mut self, item: Item) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.hosts.entry(host_key(&item.url)).or_default().push(seq, item);
        self.len += 1;
    }

    /// Takes the shallowest, oldest URL whose host `start` accepts, and the
    /// ticket `start` gave for it.
    ///
    /// Heads for which `dead` holds are dropped first. `start` is asked
    /// host by host in queue order and answers with a ticket or with when
    /// to ask again (`None`: when a request finishes). Without a ready
    /// host, the result is the earliest time one will be.
    pub(crate) fn pop_ready<T>(
        &mut self,
        mut start: impl FnMut(&str) -> Result<T, Option<Instant>>,
        mut dead: impl FnMut(&Item) -> bool,
    ) -> Result<(Item, T), Option<Instant>> {
        let mut heads = Vec::with_capacity(self.hosts.len());
        let mut dropped = 0;
        for (key, queue) in &mut self.hosts {
            while queue.peek().is_some_and(&mut dead) {
                queue.pop();
                dropped += 1;
            }
            if let Some((depth, seq)) = queue.head() {
                heads.push((depth, seq, key.clone()));
            }
        }
        self.len -= dropped;
        self.hosts.retain(|_, queue| queue.len > 0);
        heads.sort_unstable();

        let mut wake: Option<Instant> = None;
        for (_, _, key) in heads {
            match start(&key) {
                Ok(ticket) => {
                    let item = self.hosts.get_mut(&key).and_then(HostQueue::pop);
                    if let Some(item) = item {
                        self.len -= 1;
                        return Ok((item, ticket));
                    }
                }
                Err(Some(at)) => wake = Some(wake.map_or(at, |earliest| earliest.min(at))),
                Err(None) => {}
            }
        }
        Err(wake)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(host: &str, path: &str, depth: usize) -> Item {
        Item { url: Url::parse(&format!("http://{host}{path}")).unwrap(), depth, referrer: None }
    }

    fn drain(frontier: &mut Frontier, ready: impl Fn(&str) -> bool) -> Vec<String> {
        std::iter::from_fn(|| {
            frontier
                .pop_ready(|key| if ready(key) { Ok(()) } else { Err(None) }, |_| false)
                .ok()
                .map(|(item, ())| format!("{}{}", item.url.host_str().unwrap(), item.url.path()))
        })
        .collect()
    }

    #[test]
    fn serves_shallowest_first_in_fifo_order() {
        let mut frontier = Frontier::default();
        frontier.push(item("h", "/deep", 2));
        frontier.push(item("h", "/a", 1));
        frontier.push(item("g", "/b", 1));
        frontier.push(item("h", "/root", 0));
        assert_eq!(drain(&mut frontier, |_| true), ["h/root", "h/a", "g/b", "h/deep"]);
        assert!(frontier.is_empty());
    }

    #[test]
    fn hosts_that_cannot_start_are_passed_over() {
        let mut frontier = Frontier::default();
        frontier.push(item("slow", "/1", 0));
        frontier.push(item("fast", "/1", 1));
        frontier.push(item("slow", "/2", 1));
        frontier.push(item("fast", "/2", 2));
        assert_eq!(drain(&mut frontier, |key| key == "fast"), ["fast/1", "fast/2"]);
        assert_eq!(frontier.len(), 2);

        let later = Instant::now() + std::time::Duration::from_secs(5);
        let waiting = frontier.pop_ready(|_| Err::<(), _>(Some(later)), |_| false);
        assert_eq!(waiting.err(), Some(Some(later)), "the earliest time a host is ready");
        assert_eq!(drain(&mut frontier, |_| true), ["slow/1", "slow/2"]);
    }

    #[test]
    fn dead_heads_are_dropped() {
        let mut frontier = Frontier::default();
        frontier.push(item("h", "/gone", 0));
        frontier.push(item("h", "/kept", 0));
        let popped =
            frontier.pop_ready(|_| Ok::<(), Option<Instant>>(()), |i| i.url.path() == "/gone");
        assert_eq!(popped.unwrap().0.url.path(), "/kept");
        assert!(frontier.is_empty());
    }
}
