//! The cluster's allow-list: which public keys may connect, under which names.

use std::collections::BTreeMap;
use std::path::Path;

use super::keys::{decode_key, encode_key};
use super::security::SecurityError;

/// The public keys allowed to connect, each bound to one name.
///
/// A peer that completes a CURVE handshake with a key on the list is that name and no
/// other: the transport reports its frames as coming from that name, whatever routing
/// id it claims. A key appears at most once and a name at most once.
///
/// The file format is one `name = "public key"` per line (a TOML table of strings),
/// `#` starting a comment:
///
/// ```text
/// # name = "Z85 public key (40 characters)"
/// w1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
/// ```
///
/// # Examples
///
/// ```
/// use tern_transport::{AllowList, KeyPair};
///
/// let w1 = KeyPair::generate().unwrap();
/// let list = AllowList::parse(&format!("w1 = \"{}\"\n", w1.public_z85())).unwrap();
/// assert_eq!(list.name_of(w1.public()), Some("w1"));
/// assert_eq!(list.key_of("w1"), Some(w1.public()));
/// assert!(AllowList::parse("w1 = \"not a key\"").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    by_name: BTreeMap<String, [u8; 32]>,
    by_key: BTreeMap<[u8; 32], String>,
}

impl AllowList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` with its public key.
    ///
    /// # Errors
    ///
    /// [`SecurityError::AllowList`] if the name or the key is already listed, or the
    /// name is empty, longer than 255 bytes, or holds whitespace, `=`, `"` or `#`.
    pub fn insert(&mut self, name: &str, public: [u8; 32]) -> Result<(), SecurityError> {
        let bad = |why: String| SecurityError::AllowList { line: 0, why };
        if name.is_empty()
            || name.len() > 255
            || name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "=\"#".contains(c))
        {
            return Err(bad(format!("bad name {name:?}")));
        }
        if self.by_name.contains_key(name) {
            return Err(bad(format!("{name:?} is listed twice")));
        }
        if let Some(other) = self.by_key.get(&public) {
            return Err(bad(format!(
                "{name:?} has the key of {other:?}: one key, one name"
            )));
        }
        self.by_name.insert(name.to_owned(), public);
        self.by_key.insert(public, name.to_owned());
        Ok(())
    }

    /// Parses the file format above.
    ///
    /// # Errors
    ///
    /// [`SecurityError::AllowList`] naming the first bad line.
    pub fn parse(text: &str) -> Result<Self, SecurityError> {
        let mut list = Self::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let bad_line = |why: &str| SecurityError::AllowList {
                line,
                why: why.to_owned(),
            };
            let at_line = |e: SecurityError| match e {
                SecurityError::AllowList { why, .. } => SecurityError::AllowList { line, why },
                SecurityError::BadKey { what, why } => SecurityError::AllowList {
                    line,
                    why: format!("{what}: {why}"),
                },
                other => other,
            };
            let Some((name, rest)) = content.split_once('=') else {
                return Err(bad_line("expected name = \"public key\""));
            };
            let name = name.trim().trim_matches('"');
            // Z85 keys may hold `#`: a comment starts only after the quoted key.
            let rest = rest.trim();
            let (key, after) = match rest.strip_prefix('"') {
                Some(quoted) => quoted
                    .split_once('"')
                    .ok_or_else(|| bad_line("unterminated quote"))?,
                None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
            };
            let after = after.trim();
            if !after.is_empty() && !after.starts_with('#') {
                return Err(bad_line("unexpected text after the key"));
            }
            let public = decode_key(key, &format!("the key of {name:?}")).map_err(at_line)?;
            list.insert(name, public).map_err(at_line)?;
        }
        Ok(list)
    }

    /// Reads and parses an allow-list file.
    ///
    /// # Errors
    ///
    /// [`SecurityError::Io`] or [`SecurityError::AllowList`].
    pub fn load(path: &Path) -> Result<Self, SecurityError> {
        let text = std::fs::read_to_string(path).map_err(|e| SecurityError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::parse(&text)
    }

    /// The list in its file format.
    #[must_use]
    pub fn to_file_text(&self) -> String {
        self.by_name
            .iter()
            .map(|(n, k)| format!("{n} = \"{}\"\n", encode_key(k)))
            .collect()
    }

    /// The name bound to a public key.
    #[must_use]
    pub fn name_of(&self, public: &[u8; 32]) -> Option<&str> {
        self.by_key.get(public).map(String::as_str)
    }

    /// The public key of a name.
    #[must_use]
    pub fn key_of(&self, name: &str) -> Option<&[u8; 32]> {
        self.by_name.get(name)
    }

    /// How many names are listed.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether nobody is listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    #[test]
    fn parse_names_the_bad_line() -> Result<(), SecurityError> {
        let (a, b) = (KeyPair::generate()?, KeyPair::generate()?);
        let (ka, kb) = (a.public_z85(), b.public_z85());
        let good = format!("# cluster\n\n  w1 = \"{ka}\"  # first\nw2 = {kb}\n");
        let list = AllowList::parse(&good)?;
        assert_eq!(list.len(), 2);
        assert_eq!(AllowList::parse(&list.to_file_text())?, list);
        for (text, line) in [
            (format!("w1 = \"{ka}\"\nw2 \"{kb}\"\n"), 2),
            (format!("w1 = \"{ka}\"\nw1 = \"{kb}\"\n"), 2),
            (format!("w1 = \"{ka}\"\nw2 = \"{ka}\"\n"), 2),
            ("\n\nw1 = \"abc\"\n".to_owned(), 3),
            (format!("w 1 = \"{ka}\"\n"), 1),
            (format!("w1 = \"{ka}\" extra\n"), 1),
            (format!("w1 = \"{ka}\n"), 1),
        ] {
            match AllowList::parse(&text) {
                Err(SecurityError::AllowList { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        Ok(())
    }
}
