//! The queue of URLs to fetch, breadth-first by depth.
//!
//! One FIFO per depth, always served from the shallowest non-empty one.
//! With concurrency, pages of depth `d` may still be in flight when their
//! links (depth `d + 1`) arrive, but nothing deeper is started while a
//! shallower URL waits, which keeps the order breadth-first and makes
//! `max_pages` keep the pages closest to the start.

use std::collections::VecDeque;
use std::sync::Arc;

use url::Url;

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
    levels: Vec<VecDeque<Item>>,
    len: usize,
}

impl Frontier {
    pub(crate) fn push(&mut self, item: Item) {
        if self.levels.len() <= item.depth {
            self.levels.resize_with(item.depth + 1, VecDeque::new);
        }
        self.levels[item.depth].push_back(item);
        self.len += 1;
    }

    /// The oldest URL of the shallowest depth.
    pub(crate) fn pop(&mut self) -> Option<Item> {
        let item = self.levels.iter_mut().find_map(VecDeque::pop_front)?;
        self.len -= 1;
        Some(item)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str, depth: usize) -> Item {
        Item { url: Url::parse(&format!("http://h{path}")).unwrap(), depth, referrer: None }
    }

    #[test]
    fn serves_shallowest_first_in_fifo_order() {
        let mut frontier = Frontier::default();
        frontier.push(item("/deep", 2));
        frontier.push(item("/a", 1));
        frontier.push(item("/b", 1));
        frontier.push(item("/root", 0));
        let order: Vec<_> =
            std::iter::from_fn(|| frontier.pop()).map(|item| item.url.path().to_owned()).collect();
        assert_eq!(order, ["/root", "/a", "/b", "/deep"]);
        assert!(frontier.is_empty());
    }
}
