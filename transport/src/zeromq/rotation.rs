//! CURVE socket options, and the allow-list at run time: looked up per frame, replaced
//! by [`ZmqTransport::set_allow_list`] or by re-reading its file when it changes.

use std::path::PathBuf;
use std::rc::Weak;
use std::time::{Duration, SystemTime};

use tern_executor::time;

use super::stats::zmq_err;
use super::{AllowList, CurveSecurity, Inner, ZmqSecurity, ZmqSetupError, ZmqTransport, zap};
use crate::Incoming;

/// Makes `router` a CURVE server whose handshakes the ZAP handler decides.
pub(super) fn curve_server(router: &zmq::Socket, c: &CurveSecurity) -> Result<(), ZmqSetupError> {
    router
        .set_curve_server(true)
        .map_err(zmq_err("CURVE_SERVER (is CURVE compiled in?)"))?;
    router
        .set_curve_secretkey(c.keys.secret())
        .map_err(zmq_err("CURVE_SECRETKEY"))?;
    router
        .set_zap_domain(zap::DOMAIN)
        .map_err(zmq_err("ZAP_DOMAIN"))
}

/// Makes `dealer` a CURVE client that accepts only `server` at the other end.
pub(super) fn curve_client(
    dealer: &zmq::Socket,
    c: &CurveSecurity,
    server: &[u8; 32],
) -> Result<(), ZmqSetupError> {
    dealer
        .set_curve_serverkey(server)
        .map_err(zmq_err("CURVE_SERVERKEY"))?;
    dealer
        .set_curve_publickey(c.keys.public())
        .map_err(zmq_err("CURVE_PUBLICKEY"))?;
    dealer
        .set_curve_secretkey(c.keys.secret())
        .map_err(zmq_err("CURVE_SECRETKEY"))
}

impl ZmqTransport {
    /// Whether connections use CURVE.
    pub(super) fn is_curve(&self) -> bool {
        matches!(self.inner.config.security, ZmqSecurity::Curve(_))
    }

    /// The allow-listed name of a public key, now.
    pub(super) fn name_of_key(&self, key: &[u8; 32]) -> Option<String> {
        self.inner.allow.borrow().name_of(key).map(str::to_owned)
    }

    /// The allow-list in force (empty in plaintext).
    #[must_use]
    pub fn allow_list(&self) -> AllowList {
        self.inner.allow.borrow().clone()
    }

    /// Replaces the allow-list without a restart. From the next frame on, keys no
    /// longer listed are refused, even on connections admitted before; new keys can
    /// connect; a peer whose key changed is reconnected with its new server key, and a
    /// peer no longer listed is disconnected (reported as [`Incoming::PeerLost`]).
    ///
    /// # Errors
    ///
    /// [`ZmqSetupError::Config`] if the transport is not CURVE or the list is empty
    /// (the old list stays in force).
    pub fn set_allow_list(&self, list: AllowList) -> Result<(), ZmqSetupError> {
        if !self.is_curve() {
            return Err(ZmqSetupError::Config(
                "allow_list: this transport is plaintext".into(),
            ));
        }
        if list.is_empty() {
            return Err(ZmqSetupError::Config(
                "allow_list: empty (it would refuse every peer)".into(),
            ));
        }
        let old = self.inner.allow.replace(list.clone());
        self.inner
            .routes
            .borrow_mut()
            .retain(|name, _| list.key_of(name).is_some());
        let changed: Vec<(String, String)> = self
            .inner
            .dealers
            .borrow()
            .iter()
            .filter(|(name, _)| old.key_of(name) != list.key_of(name))
            .map(|(name, p)| (name.clone(), p.endpoint.clone()))
            .collect();
        for (name, endpoint) in changed {
            if list.key_of(&name).is_some() {
                if let Err(e) = self.connect(&name, &endpoint) {
                    tracing::warn!(node = %self.inner.config.name, peer = %name, error = %e,
                        "cannot reconnect with the new key");
                }
            } else {
                crate::Transport::forget_peer(self, &name);
                self.push(Incoming::PeerLost(name));
            }
        }
        self.bump(|s| s.allow_list_reloads += 1);
        tracing::info!(name: "tern.transport.allow_list", node = %self.inner.config.name,
            keys = list.len(), "allow-list in force");
        Ok(())
    }
}

/// What identifies a version of a file, cheaply.
fn stamp(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Re-reads the allow-list file whenever its modification time or length changes. A
/// file that cannot be read or parsed is logged and counted, and the list in force
/// stays.
pub(super) async fn watch_file(inner: Weak<Inner>, path: PathBuf, every: Duration) {
    let mut seen = stamp(&path);
    loop {
        time::sleep(every).await;
        let now = stamp(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let Some(t) = inner.upgrade().map(|inner| ZmqTransport { inner }) else {
            return;
        };
        let applied = AllowList::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|list| t.set_allow_list(list).map_err(|e| e.to_string()));
        if let Err(error) = applied {
            t.bump(|s| s.allow_list_errors += 1);
            tracing::error!(name: "tern.transport.allow_list_refused", node = %t.inner.config.name,
                file = %path.display(), %error, "allow-list file refused: the previous list stays in force");
        }
    }
}
