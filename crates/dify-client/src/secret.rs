//! The API key, wrapped so that it cannot leak.
//!
//! Dify keys grant full access to a workspace's knowledge bases. The key is
//! kept only as a sensitive `Authorization` header value built once; its
//! `Debug` prints a placeholder, and no `Display` exists, so neither a
//! `{:?}` of the client nor an error message can reveal it.

use std::fmt;

use http::HeaderValue;

/// A Dify dataset API key (`dataset-...`) whose `Debug` is redacted.
#[derive(Clone)]
pub struct ApiKey {
    header: Option<HeaderValue>,
}

impl ApiKey {
    /// Wraps a key. An empty key or one with characters that cannot appear
    /// in an HTTP header is accepted here and rejected by
    /// [`DifyClientBuilder::build`](crate::DifyClientBuilder::build).
    pub fn new(key: impl AsRef<str>) -> Self {
        let key = key.as_ref().trim();
        let header = if key.is_empty() {
            None
        } else {
            HeaderValue::from_str(&format!("Bearer {key}")).ok().map(|mut value| {
                value.set_sensitive(true);
                value
            })
        };
        Self { header }
    }

    /// The `Authorization` header value, `None` when the key is unusable.
    pub(crate) fn header(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        Self::new(key)
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self::new(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("dataset-SECRET123");
        let shown = format!("{key:?} {:?}", key.header());
        assert!(!shown.contains("SECRET123"), "{shown}");
        assert!(key.header().is_some_and(HeaderValue::is_sensitive));
    }

    #[test]
    fn empty_and_invalid_keys_are_unusable() {
        assert!(ApiKey::new("  ").header().is_none());
        assert!(ApiKey::new("bad\nkey").header().is_none());
    }
}
