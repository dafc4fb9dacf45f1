//! The self-redacting API key.

use std::fmt;

/// A secret API key.
///
/// `Debug` and `Display` print `***`; the only way to read the key is
/// [`ApiKey::expose`], which the client calls exactly once per request to build
/// the `Authorization: Bearer` header. The type deliberately implements neither
/// `Serialize` nor `Deserialize`, so it cannot leak into checkpoints or logs by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key. Surrounding whitespace (a common artefact of reading the key
    /// from a file or an environment variable) is trimmed.
    pub fn new(key: impl Into<String>) -> Self {
        let key: String = key.into();
        let trimmed = key.trim();
        if trimmed.len() == key.len() {
            ApiKey(key)
        } else {
            ApiKey(trimmed.to_owned())
        }
    }

    /// Returns the key itself. Only for building the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the key is the empty string (treated as "no key").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey::new(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_key() {
        let k = ApiKey::new(" sk-secret-123\n");
        assert_eq!(k.expose(), "sk-secret-123");
        assert_eq!(format!("{k}"), "***");
        assert!(!format!("{k:?}").contains("secret"));
    }
}
