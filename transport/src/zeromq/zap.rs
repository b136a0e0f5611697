//! The ZAP handler (ZeroMQ RFC 27) of a CURVE transport: a `REP` socket on
//! `inproc://zeromq.zap.01` of the transport's context, served by a task in the
//! executor's poll loop. libzmq asks it about every CURVE handshake on the `ROUTER`;
//! it admits exactly the client keys on the current allow-list.
//!
//! The User-Id it gives an admitted connection is the client's public key (Z85): the
//! transport maps it to a name through the allow-list *as it is when each frame
//! arrives*, so a key revoked or rotated away stops being accepted at once, even on a
//! connection that was admitted before.

use std::rc::Weak;

use tern_executor::ZmqSocket;

use super::keys::encode_key;
use super::stats::zmq_err;
use super::{Inner, ZmqSetupError, ZmqTransport};

/// Where libzmq looks for the ZAP handler of a context.
pub(super) const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The ZAP domain of tern's `ROUTER` sockets.
pub(super) const DOMAIN: &str = "tern";

/// Binds the context's ZAP handler socket.
pub(super) fn bind(ctx: &zmq::Context) -> Result<ZmqSocket, ZmqSetupError> {
    let rep = ctx.socket(zmq::REP).map_err(zmq_err("ZAP socket"))?;
    rep.set_linger(0).map_err(zmq_err("ZAP LINGER"))?;
    rep.bind(ZAP_ENDPOINT).map_err(zmq_err(
        "bind the ZAP handler (one CURVE transport per ZeroMQ context)",
    ))?;
    Ok(ZmqSocket::new(rep))
}

/// What the handler decided about one request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Verdict {
    /// The reply's frames.
    pub(super) reply: Vec<Vec<u8>>,
    /// Refused: the remote address and why.
    pub(super) refused: Option<(String, &'static str)>,
}

/// Answers one ZAP request: `[version, request id, domain, address, identity,
/// mechanism, credentials...]`; the reply is `[version, request id, status code,
/// status text, user id, metadata]`.
pub(super) fn answer(
    request: &[Vec<u8>],
    name_of: impl Fn(&[u8; 32]) -> Option<String>,
) -> Verdict {
    let id = request.get(1).cloned().unwrap_or_default();
    let address = request
        .get(3)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let reply = |code: &str, text: &str, user: Vec<u8>| {
        vec![
            b"1.0".to_vec(),
            id.clone(),
            code.as_bytes().to_vec(),
            text.as_bytes().to_vec(),
            user,
            Vec::new(),
        ]
    };
    let refuse = |code: &str, why: &'static str| Verdict {
        reply: reply(code, why, Vec::new()),
        refused: Some((address.clone(), why)),
    };
    if request.len() < 6 || request[0] != b"1.0" {
        return refuse("500", "malformed ZAP request");
    }
    if request[5] != b"CURVE" || request.len() != 7 {
        return refuse("400", "not a CURVE handshake");
    }
    let Ok(key) = <[u8; 32]>::try_from(request[6].as_slice()) else {
        return refuse("400", "malformed CURVE key");
    };
    if name_of(&key).is_none() {
        return refuse("400", "a key not on the allow-list");
    }
    Verdict {
        reply: reply("200", "OK", encode_key(&key).into_bytes()),
        refused: None,
    }
}

/// Serves ZAP requests until the transport is gone.
pub(super) async fn serve(inner: Weak<Inner>, rep: ZmqSocket) {
    loop {
        let Ok(request) = rep.recv_multipart().await else {
            return;
        };
        let Some(t) = inner.upgrade().map(|inner| ZmqTransport { inner }) else {
            return;
        };
        let verdict = answer(&request, |k| t.name_of_key(k));
        if let Some((address, why)) = &verdict.refused {
            t.bump(|s| s.auth_refused += 1);
            t.refused(why, address);
        }
        drop(t);
        if let Err(e) = rep.send_multipart(verdict.reply).await {
            tracing::error!(error = %e, "ZAP reply failed");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mechanism: &str, key: &[u8]) -> Vec<Vec<u8>> {
        [
            b"1.0".as_slice(),
            b"7",
            b"tern",
            b"127.0.0.1",
            b"",
            mechanism.as_bytes(),
            key,
        ]
        .iter()
        .map(|f| f.to_vec())
        .collect()
    }

    #[test]
    fn only_listed_curve_keys_are_admitted() {
        let known = [1u8; 32];
        let name_of = |k: &[u8; 32]| (*k == known).then(|| "w1".to_owned());
        let ok = answer(&request("CURVE", &known), name_of);
        assert_eq!(ok.refused, None);
        assert_eq!(ok.reply[1], b"7");
        assert_eq!(ok.reply[2], b"200");
        assert_eq!(ok.reply[4], encode_key(&known).into_bytes());
        let stranger = answer(&request("CURVE", &[2u8; 32]), name_of);
        assert_eq!(stranger.reply[2], b"400");
        assert_eq!(
            stranger.refused,
            Some(("127.0.0.1".into(), "a key not on the allow-list"))
        );
        assert_eq!(answer(&request("NULL", b""), name_of).reply[2], b"400");
        assert_eq!(
            answer(&request("CURVE", b"short"), name_of).reply[2],
            b"400"
        );
        assert_eq!(answer(&[b"2.0".to_vec()], name_of).reply[2], b"500");
    }
}
