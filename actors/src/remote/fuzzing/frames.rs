//! The frames a fuzzed peer sends the router: garbage, directories, replies and
//! errors to its asks, requests for its components, and stream frames.

use super::*;

impl World {
    /// A frame from a peer: garbage, or one of the kinds the router acts on.
    pub(super) fn frame(&mut self, u: &mut Unstructured<'_>) -> ArbResult<()> {
        let peer = *pick(u, &PEERS)?;
        let mut env = Envelope {
            version: PROTOCOL_VERSION,
            message_id: u.int_in_range(1..=1_000u64)?,
            source: Some(ComponentRef {
                node: peer.to_owned(),
                name: String::new(),
                generation: 0,
            }),
            ..Envelope::default()
        };
        let mut payload = Vec::new();
        let our_id = || -> ArbResult<u64> {
            Ok(u64::from(u8::try_from(self.asks.len() % 200).unwrap_or(0)) + 1)
        };
        match u.int_in_range(0..=5u8)? {
            0 => {
                let len = u.int_in_range(0..=48usize)?;
                let raw = u.bytes(len)?.to_vec();
                self.router
                    .handle_frame(self.now, &self.links, peer, &raw, Vec::new());
                return Ok(());
            }
            1 => {
                let mask: u8 = u.arbitrary()?;
                let dir = Directory {
                    node: if u.ratio(1, 8)? {
                        "x".into()
                    } else {
                        peer.into()
                    },
                    generation: u64::from(u.int_in_range(0..=3u8)?),
                    version: u64::from(u.int_in_range(0..=5u8)?),
                    components: COMPONENTS
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, c)| (*c).to_owned())
                        .collect(),
                    reply_wanted: u.arbitrary()?,
                };
                env.kind = Kind::Tell.into();
                env.destination = Some(ComponentRef {
                    node: ME.into(),
                    name: DIRECTORY_COMPONENT.into(),
                    generation: 0,
                });
                env.message_type = DIRECTORY_MESSAGE_TYPE.into();
                env.content_type = PROTOBUF_CONTENT_TYPE.into();
                payload = encode_directory(&dir);
            }
            2 | 3 => {
                // An answer to one of this node's asks (or a guess at an id).
                let id = match self.asks.iter().rev().find_map(|(s, _)| s.id.get()) {
                    Some(id) if u.arbitrary()? => id,
                    _ => our_id()?,
                };
                env.correlation_id = id;
                if u.arbitrary()? {
                    env.kind = Kind::Reply.into();
                    env.content_type = "application/json".into();
                    payload = b"3".to_vec();
                } else {
                    env.kind = Kind::Error.into();
                    env.error = Some(ErrorInfo {
                        code: u.int_in_range(0..=12)?,
                        detail: "no".into(),
                    });
                }
            }
            4 => {
                let ask = u.arbitrary()?;
                env.kind = if ask { Kind::Ask } else { Kind::Tell }.into();
                env.destination = Some(ComponentRef {
                    node: ME.into(),
                    name: (*pick(u, &COMPONENTS)?).into(),
                    generation: u64::from(u.int_in_range(0..=1u8)?),
                });
                env.message_type = "t.In".into();
                env.content_type = "application/json".into();
                env.timeout_ms = u32::from(u.int_in_range(0..=3_000u16)?);
                if ask && u.ratio(1, 4)? {
                    env.credit = u.int_in_range(1..=4u32)?;
                }
                payload = vec![0; u.int_in_range(0..=200usize)?];
            }
            _ => {
                let id = match self.streams.last().and_then(|s| s.id.get()) {
                    Some(id) if u.arbitrary()? => id,
                    _ => our_id()?,
                };
                env.correlation_id = id;
                env.sequence = u64::from(u.int_in_range(0..=6u8)?);
                env.kind = match u.int_in_range(0..=2u8)? {
                    0 => Kind::StreamItem,
                    1 => Kind::StreamEnd,
                    _ => Kind::Credit,
                }
                .into();
                env.credit = u.int_in_range(0..=3u32)?;
                env.content_type = "application/json".into();
            }
        }
        let bytes = encode_envelope(&env);
        self.router
            .handle_frame(self.now, &self.links, peer, &bytes, payload);
        Ok(())
    }
}
