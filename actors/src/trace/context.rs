//! W3C trace context: the ids a traced call carries across nodes.

use std::fmt;

use tern_proto::v1::TraceContext;

/// The W3C `sampled` flag (bit 0 of `trace-flags`).
const SAMPLED: u32 = 1;

/// The identity of one span in one trace, as W3C trace context carries it: a 16-byte
/// trace id shared by every span of the trace, the 8-byte id of this span, and whether
/// the trace is sampled (recorded).
///
/// ```
/// use tern_actors::trace::SpanContext;
///
/// let ctx = SpanContext::new([1; 16], [2; 8], true);
/// assert_eq!(
///     ctx.to_string(),
///     "00-01010101010101010101010101010101-0202020202020202-01",
/// );
/// assert_eq!(SpanContext::parse_traceparent(&ctx.to_string()), Some(ctx));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanContext {
    /// The trace's id (never all zero).
    pub trace_id: [u8; 16],
    /// This span's id (never all zero).
    pub span_id: [u8; 8],
    /// Whether the spans of this trace are recorded.
    pub sampled: bool,
}

impl SpanContext {
    /// A context from its ids.
    #[must_use]
    pub const fn new(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Self {
        Self {
            trace_id,
            span_id,
            sampled,
        }
    }

    /// The context an envelope carried, if its ids are valid W3C ids (the right
    /// lengths, not all zero); `None` otherwise, and the request is handled untraced.
    #[must_use]
    pub fn from_wire(wire: &TraceContext) -> Option<Self> {
        let trace_id: [u8; 16] = wire.trace_id.as_slice().try_into().ok()?;
        let span_id: [u8; 8] = wire.span_id.as_slice().try_into().ok()?;
        let ctx = Self::new(trace_id, span_id, wire.flags & SAMPLED != 0);
        ctx.is_valid().then_some(ctx)
    }

    /// The envelope's `trace` field for this context.
    #[must_use]
    pub fn to_wire(&self) -> TraceContext {
        TraceContext {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            flags: if self.sampled { SAMPLED } else { 0 },
        }
    }

    /// Whether both ids are nonzero, as W3C requires.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        self.trace_id != [0; 16] && self.span_id != [0; 8]
    }

    /// The trace id in lowercase hex (32 characters), as logs and exporters show it.
    #[must_use]
    pub fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id in lowercase hex (16 characters).
    #[must_use]
    pub fn span_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// Parses a W3C `traceparent` header of version `00`
    /// (`00-<32 hex>-<16 hex>-<2 hex>`); `None` if it is not one or has zero ids.
    #[must_use]
    pub fn parse_traceparent(s: &str) -> Option<Self> {
        let mut parts = s.split('-');
        let (Some("00"), Some(t), Some(p), Some(f), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let trace_id: [u8; 16] = unhex(t)?.try_into().ok()?;
        let span_id: [u8; 8] = unhex(p)?.try_into().ok()?;
        let flags = unhex(f)?;
        let [flags] = flags.as_slice() else {
            return None;
        };
        let ctx = Self::new(trace_id, span_id, u32::from(*flags) & SAMPLED != 0);
        ctx.is_valid().then_some(ctx)
    }
}

/// The `traceparent` form: `00-<trace id>-<span id>-<flags>`.
impl fmt::Display for SpanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_hex(),
            self.span_hex(),
            u8::from(self.sampled)
        )
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The bytes of lowercase hex `s`, `None` if it is not (W3C ids are lowercase).
fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_keeps_ids_and_sampled_flag() {
        let ctx = SpanContext::new([9; 16], [3; 8], false);
        assert_eq!(SpanContext::from_wire(&ctx.to_wire()), Some(ctx));
        let sampled = SpanContext {
            sampled: true,
            ..ctx
        };
        assert_eq!(SpanContext::from_wire(&sampled.to_wire()), Some(sampled));
    }

    #[test]
    fn zero_or_short_ids_are_not_a_context() {
        let zero = SpanContext::new([0; 16], [3; 8], true).to_wire();
        assert_eq!(SpanContext::from_wire(&zero), None);
        let short = TraceContext {
            trace_id: vec![1; 15],
            span_id: vec![1; 8],
            flags: 1,
        };
        assert_eq!(SpanContext::from_wire(&short), None);
    }

    #[test]
    fn traceparent_refuses_malformed_headers() {
        let ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ctx = SpanContext::parse_traceparent(ok).map(|c| c.to_string());
        assert_eq!(ctx.as_deref(), Some(ok));
        for bad in [
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",
        ] {
            assert_eq!(SpanContext::parse_traceparent(bad), None, "{bad}");
        }
    }
}
