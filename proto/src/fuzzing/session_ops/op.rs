//! The session harness's operations, and how they are read from fuzz bytes.

use arbitrary::{Result as ArbResult, Unstructured};

use super::super::arb::*;
use super::World;
use crate::session::{Nanos, Outgoing};
use crate::v1::{Envelope, ErrorCode};

/// One step of the session harness.
#[derive(Debug)]
pub(super) enum Op {
    /// `side` asks `peer`.
    Ask {
        side: usize,
        peer: usize,
        out: Outgoing,
        timeout: Option<Nanos>,
    },
    /// `side` tells `peer`.
    Tell {
        side: usize,
        peer: usize,
        out: Outgoing,
    },
    /// `side` answers one of the requests it received (`pick` chooses which); `keep`
    /// leaves it answerable again (a buggy application answering twice).
    Reply {
        side: usize,
        pick: usize,
        result: Result<(Vec<u8>, String), (ErrorCode, String)>,
        keep: bool,
    },
    /// The network delivers its first `n` frames.
    Deliver { n: usize },
    /// The network loses its first frame.
    Drop,
    /// The network delivers its first frame twice.
    Duplicate,
    /// The network swaps its first two frames.
    Swap,
    /// The network flips bits in its first frame's envelope.
    Mutate { pos: usize, xor: u8 },
    /// Time passes; each side in `fire` handles its timeouts.
    Advance { delta: Nanos, fire: [bool; 2] },
    /// `side`'s driver loses `peer`.
    PeerLost { side: usize, peer: usize },
    /// `side` cancels an ask (`pick` chooses among every ask it made) or any id.
    Cancel { side: usize, id: Choice },
    /// Raw bytes arrive at `side` as if from `from`.
    Inject {
        side: usize,
        from: usize,
        envelope: Vec<u8>,
        payload: Vec<u8>,
    },
    /// A forged (often valid) envelope arrives at `side` as if from `from`.
    Forge {
        side: usize,
        from: usize,
        envelope: Box<Envelope>,
    },
}

/// An id to cancel: one the side handed out, or any.
#[derive(Debug)]
pub(super) enum Choice {
    Issued(usize),
    Any(u64),
}

fn arb_outgoing(u: &mut Unstructured<'_>) -> ArbResult<Outgoing> {
    let component = if u.ratio(7, 8)? {
        "worker".to_owned()
    } else {
        arb_string(u)?
    };
    let message_type = if u.ratio(7, 8)? {
        "demo.v1.Add".to_owned()
    } else {
        arb_string(u)?
    };
    let content_type = if u.ratio(7, 8)? {
        "application/postcard".to_owned()
    } else {
        arb_string(u)?
    };
    let len = u.int_in_range(0usize..=8)?.min(u.len());
    Ok(Outgoing::new(
        component,
        message_type,
        content_type,
        u.bytes(len)?.to_vec(),
    ))
}

fn arb_nanos(u: &mut Unstructured<'_>) -> ArbResult<Nanos> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => 0,
        1 => u.arbitrary()?,
        2 => u64::MAX - u64::from(u.arbitrary::<u16>()?),
        3 => u.int_in_range(0..=1_000)?,
        _ => u.int_in_range(0..=3_000_000_000)?,
    })
}

impl Op {
    pub(super) fn arbitrary(u: &mut Unstructured<'_>, world: &World) -> ArbResult<Self> {
        let side = usize::from(u.arbitrary::<bool>()?);
        Ok(match u.int_in_range(0u8..=15)? {
            0..=2 => Self::Ask {
                side,
                peer: u.choose_index(3)?,
                out: arb_outgoing(u)?,
                timeout: if u.ratio(3, 4)? {
                    Some(arb_nanos(u)?)
                } else {
                    None
                },
            },
            3 => Self::Tell {
                side,
                peer: u.choose_index(3)?,
                out: arb_outgoing(u)?,
            },
            4 | 5 => Self::Reply {
                side,
                pick: u.arbitrary()?,
                result: if u.ratio(3, 4)? {
                    Ok((arb_bytes(u, 2)?, arb_string(u)?))
                } else {
                    let code = u.int_in_range(0..=9)?;
                    let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified);
                    Err((code, arb_string(u)?))
                },
                keep: u.ratio(1, 8)?,
            },
            6..=8 => Self::Deliver {
                n: u.int_in_range(1..=8)?,
            },
            9 => match u.int_in_range(0u8..=3)? {
                0 => Self::Drop,
                1 => Self::Duplicate,
                2 => Self::Swap,
                _ => Self::Mutate {
                    pos: u.arbitrary()?,
                    xor: u.int_in_range(1..=255)?,
                },
            },
            10 | 11 => {
                // Often exactly to (or just before) the next deadline.
                let next = world.sides[side].session.poll_timeout();
                let delta = match (u.int_in_range(0u8..=3)?, next) {
                    (0, Some(d)) => d.saturating_sub(world.now),
                    (1, Some(d)) => d.saturating_sub(world.now).saturating_sub(1),
                    _ => arb_nanos(u)?,
                };
                Self::Advance {
                    delta,
                    fire: [u.ratio(3, 4)?, u.ratio(3, 4)?],
                }
            }
            12 => Self::PeerLost {
                side,
                peer: u.choose_index(3)?,
            },
            13 => Self::Cancel {
                side,
                id: if u.ratio(3, 4)? {
                    Choice::Issued(u.arbitrary()?)
                } else {
                    Choice::Any(u.arbitrary()?)
                },
            },
            14 => {
                let len = u.arbitrary_len::<u8>()?.min(256);
                Self::Inject {
                    side,
                    from: u.choose_index(3)?,
                    envelope: u.bytes(len)?.to_vec(),
                    payload: arb_bytes(u, 1)?,
                }
            }
            _ => {
                let known = &world.sides[side].issued;
                Self::Forge {
                    side,
                    from: u.choose_index(3)?,
                    envelope: Box::new(arb_envelope(u, known)?),
                }
            }
        })
    }
}
