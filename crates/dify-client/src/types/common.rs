//! Shapes shared by several endpoints: pages, simple results, and the serde
//! helpers that make parsing forgiving.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One page of a list endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    /// The items of this page.
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<T>,
    /// Whether the server thinks more pages follow (unreliable on some
    /// versions; see [`Page::is_last`]).
    #[serde(deserialize_with = "null_as_default")]
    pub has_more: bool,
    /// The page size the server used.
    #[serde(deserialize_with = "null_as_default")]
    pub limit: u32,
    /// Total number of items.
    #[serde(deserialize_with = "null_as_default")]
    pub total: u64,
    /// The page number (1-based).
    #[serde(deserialize_with = "null_as_default")]
    pub page: u32,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self { data: Vec::new(), has_more: false, limit: 0, total: 0, page: 0 }
    }
}

impl<T> Page<T> {
    /// Whether this is the last page, by the rule that holds on every
    /// server version: an empty page, or `page * limit >= total`.
    /// (`has_more` is wrong when the limit was capped or the last page is
    /// exactly full.)
    pub fn is_last(&self, requested_limit: u32) -> bool {
        let limit = u64::from(requested_limit.min(self.limit.max(1)));
        self.data.is_empty() || u64::from(self.page.max(1)) * limit >= self.total
    }
}

/// The `{"result": "success"}` answer of toggles and batch writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OperationResult {
    /// `"success"` on success.
    pub result: String,
}

/// Treats `null` like a missing field.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads an optional nested object, treating one whose shape this crate
/// does not understand like a missing one: an odd setting nested in a
/// dataset must not fail a whole page of datasets.
pub(crate) fn lenient_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
}

/// Reads a list, skipping items whose shape this crate does not understand
/// (and treating `null` or a non-list as empty), for the same reason as
/// [`lenient_option`].
pub(crate) fn lenient_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let items = match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Array(items)) => items,
        _ => return Ok(Vec::new()),
    };
    Ok(items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect())
}

/// Accepts a count sent either as a number or as a string (tags'
/// `binding_count` is a string).
pub(crate) fn lenient_count<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Count {
        Number(u64),
        Text(String),
        Float(f64),
    }
    Ok(match Option::<Count>::deserialize(deserializer)? {
        Some(Count::Number(n)) => Some(n),
        Some(Count::Text(text)) => text.trim().parse().ok(),
        // Only non-negative whole counts are meaningful; others are dropped.
        Some(Count::Float(f)) if f >= 0.0 && f.fract() == 0.0 => Some(f as u64),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_page_rules() {
        let page = |n: usize, page, limit, total| Page {
            data: vec![0; n],
            has_more: true,
            limit,
            total,
            page,
        };
        assert!(page(0, 3, 20, 100).is_last(20), "empty page");
        assert!(page(20, 5, 20, 100).is_last(20), "exactly full last page");
        assert!(!page(20, 4, 20, 100).is_last(20));
        assert!(!page(100, 1, 100, 250).is_last(500), "capped limit");
    }

    #[test]
    fn odd_nested_values_are_dropped_not_fatal() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "lenient_option")]
            one: Option<OperationResult>,
            #[serde(default, deserialize_with = "lenient_vec")]
            many: Vec<OperationResult>,
        }
        let held: Holder =
            serde_json::from_str(r#"{"one": 7, "many": [{"result": "a"}, 3, null]}"#).unwrap();
        assert_eq!(held.one, None);
        assert_eq!(held.many, [OperationResult { result: "a".into() }]);
        let held: Holder = serde_json::from_str(r#"{"many": "x"}"#).unwrap();
        assert!(held.one.is_none() && held.many.is_empty());
    }

    #[test]
    fn nulls_and_missing_fields_default() {
        let page: Page<u32> = serde_json::from_str(r#"{"data":null,"total":3}"#).unwrap();
        assert_eq!(page.total, 3);
        assert!(page.data.is_empty());
    }
}
