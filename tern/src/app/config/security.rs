//! The `[security]` section of a container's configuration: CURVE keys and the
//! allow-list, or an explicit plaintext opt-in.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, Layered, Source};
use crate::transport::{AllowList, CurveSecurity, KeyPair, ZmqSecurity};

/// How a container's ZeroMQ connections are protected (`[security]`). The files are
/// read when a ZeroMQ transport starts ([`SecuritySettings::load`]; `check-config`
/// reads them too), so a simulated container needs none.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecuritySettings {
    /// `mode = "plaintext"`: neither authenticated nor encrypted (logged as a warning).
    Plaintext,
    /// `mode = "curve"` (the default): this node's key pair and the cluster's
    /// allow-list, from these files (`None`: not set).
    Curve {
        /// `security.key_file` and where it was set.
        key_file: Option<(PathBuf, Source)>,
        /// `security.allow_list` and where it was set.
        allow_list: Option<(PathBuf, Source)>,
        /// `security.reload_ms`.
        reload: Duration,
    },
}

impl SecuritySettings {
    /// The transport's setting, with the key pair and the allow-list read.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Missing`] when CURVE is on and `key_file` or `allow_list` is not
    /// set (a node never starts encrypted without an allow-list);
    /// [`ConfigError::BadValue`] for a file that cannot be read or holds no valid key
    /// pair, or no valid and non-empty allow-list.
    pub fn load(&self) -> Result<ZmqSecurity, ConfigError> {
        let Self::Curve {
            key_file,
            allow_list,
            reload,
        } = self
        else {
            return Ok(ZmqSecurity::Plaintext);
        };
        let missing = |key: &str| {
            ConfigError::Missing {
            key: key.into(),
            expected: "a file, because CURVE is on (`security.mode = \"plaintext\"` turns it off explicitly)".into(),
        }
        };
        let bad =
            |key: &str, origin: &Source, expected: &str, found: String| ConfigError::BadValue {
                key: key.into(),
                origin: origin.clone(),
                expected: expected.into(),
                found,
            };
        let (key_path, key_origin) = key_file
            .as_ref()
            .ok_or_else(|| missing("security.key_file"))?;
        let (allow_path, allow_origin) = allow_list
            .as_ref()
            .ok_or_else(|| missing("security.allow_list"))?;
        let keys = KeyPair::load(key_path).map_err(|e| {
            bad(
                "security.key_file",
                key_origin,
                "a CURVE key pair file",
                e.to_string(),
            )
        })?;
        let allow = AllowList::load(allow_path).map_err(|e| {
            bad(
                "security.allow_list",
                allow_origin,
                "an allow-list file",
                e.to_string(),
            )
        })?;
        if allow.is_empty() {
            return Err(bad(
                "security.allow_list",
                allow_origin,
                "at least one `name = \"public key\"` line",
                "an empty list".into(),
            ));
        }
        let mut curve = CurveSecurity::new(keys, allow);
        curve.allow_list_file = Some(allow_path.clone());
        curve.reload_ivl = *reload;
        Ok(ZmqSecurity::Curve(Box::new(curve)))
    }
}

impl Layered {
    /// The `[security]` section, checked (its files are read by
    /// [`SecuritySettings::load`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] for a mode other than curve or plaintext, or a
    /// `reload_ms` of 0.
    pub fn security(&self, warnings: &mut Vec<String>) -> Result<SecuritySettings, ConfigError> {
        let file = |key: &str| self.str(key).map(|p| (PathBuf::from(p), self.source(key)));
        match self.str("security.mode").unwrap_or("curve") {
            "plaintext" => {
                if file("security.key_file").is_some() || file("security.allow_list").is_some() {
                    warnings.push(
                        "security.mode is \"plaintext\": key_file and allow_list are ignored"
                            .into(),
                    );
                }
                Ok(SecuritySettings::Plaintext)
            }
            "curve" => {
                let reload = match self.int("security.reload_ms") {
                    Some(ms) if ms > 0 => Duration::from_millis(ms),
                    other => {
                        return Err(self.bad(
                            "security.reload_ms",
                            "a positive integer",
                            format!("{other:?}"),
                        ));
                    }
                };
                Ok(SecuritySettings::Curve {
                    key_file: file("security.key_file"),
                    allow_list: file("security.allow_list"),
                    reload,
                })
            }
            other => Err(self.bad(
                "security.mode",
                "\"curve\" or \"plaintext\"",
                format!("{other:?}"),
            )),
        }
    }
}

impl super::NodeSettings {
    /// The ZeroMQ transport's configuration for this node: name, endpoints, peers,
    /// limits, and its security with the key pair and the allow-list read.
    ///
    /// # Errors
    ///
    /// As [`SecuritySettings::load`].
    pub fn zmq(&self) -> Result<crate::transport::ZmqConfig, ConfigError> {
        let mut z = crate::transport::ZmqConfig::new(self.name.clone());
        z.listen.clone_from(&self.listen);
        z.peers.clone_from(&self.peers);
        z.max_frame = self.max_frame;
        z.heartbeat_ivl = self.heartbeat_ivl;
        z.heartbeat_timeout = self.heartbeat_timeout;
        z.handshake_ivl = self.handshake_ivl;
        z.send_hwm = self.send_hwm;
        z.max_connections_per_address = self.max_connections_per_address;
        z.security = self.security.load()?;
        Ok(z)
    }
}

/// Writes a new key pair to `out` (never over an existing file, owner-only) and
/// returns the allow-list line that admits it as `name`.
///
/// # Errors
///
/// [`crate::transport::SecurityError`] if the key cannot be generated or written.
pub fn keygen(
    name: &str,
    out: &std::path::Path,
) -> Result<String, crate::transport::SecurityError> {
    let keys = KeyPair::generate()?;
    keys.save(out)?;
    Ok(format!("{name} = \"{}\"", keys.public_z85()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_is_the_default_and_refuses_to_start_without_keys_or_allow_list() {
        let base = "[node]\nname = \"n\"\nlisten = [\"tcp://127.0.0.1:1\"]\n";
        let settings = |text: &str| {
            Layered::from_toml(text, "n.toml")
                .and_then(|l| l.node(1))
                .map(|s| s.security)
        };
        let missing = |text: &str, key: &str| match settings(text).and_then(|s| s.load()) {
            Err(ConfigError::Missing { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{text}: {other:?}"),
        };
        missing(base, "security.key_file");
        missing(
            &format!("{base}[security]\nkey_file = \"k\"\n"),
            "security.allow_list",
        );
        let unreadable =
            format!("{base}[security]\nkey_file = \"/nonexistent/k\"\nallow_list = \"a\"\n");
        assert!(matches!(
            settings(&unreadable).and_then(|s| s.load()),
            Err(ConfigError::BadValue { .. })
        ));
        let plain = format!("{base}[security]\nmode = \"plaintext\"\n");
        assert_eq!(
            settings(&plain).and_then(|s| s.load()),
            Ok(ZmqSecurity::Plaintext)
        );
        let typo = format!("{base}[security]\nmode = \"none\"\n");
        assert!(matches!(settings(&typo), Err(ConfigError::BadValue { .. })));
    }
}
