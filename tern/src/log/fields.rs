//! An event's fields, collected once so flood control and both output formats read
//! the same values.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

/// One field's value, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// Text (`%x`, `?x` and strings).
    Str(String),
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    /// The value as a JSON value.
    pub(super) fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Str(s) => serde_json::Value::String(s.clone()),
            Self::I64(i) => (*i).into(),
            Self::U64(u) => (*u).into(),
            Self::F64(x) => serde_json::Number::from_f64(*x)
                .map_or_else(|| serde_json::Value::String(x.to_string()), Into::into),
            Self::Bool(b) => (*b).into(),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Quoted only when it would not read back as one token.
            Self::Str(s) if s.is_empty() || s.contains([' ', '"', '=']) => write!(f, "{s:?}"),
            Self::Str(s) => f.write_str(s),
            Self::I64(i) => write!(f, "{i}"),
            Self::U64(u) => write!(f, "{u}"),
            Self::F64(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The fields of one event in the order they were written; `message` apart.
#[derive(Debug, Default)]
pub(super) struct Fields {
    /// The event's message, if it has one.
    pub(super) message: Option<String>,
    /// Every other field.
    pub(super) list: Vec<(&'static str, Value)>,
}

/// Fields whose value names the remote side of an event, for flood control per
/// remote address: the first one present is the key.
const REMOTE_KEYS: [&str; 5] = ["peer", "addr", "from", "to", "remote"];

impl Fields {
    /// The value of field `name`, if present.
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.list.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The remote address or peer this event is about, if it names one; for an
    /// `ip:port` address the IP alone, so one host's fresh connections (new ports)
    /// share one budget.
    pub(super) fn remote(&self) -> Option<String> {
        let v = REMOTE_KEYS.iter().find_map(|k| self.get(k))?.to_string();
        Some(match v.parse::<std::net::SocketAddr>() {
            Ok(a) => a.ip().to_string(),
            Err(_) => v,
        })
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = Some(s);
        } else {
            self.list.push((field.name(), Value::Str(s)));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.list.push((field.name(), Value::Str(value.to_owned())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.list.push((field.name(), Value::I64(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.list.push((field.name(), Value::U64(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.list.push((field.name(), Value::F64(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.list.push((field.name(), Value::Bool(value)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_quoted_only_when_they_would_not_read_back() {
        assert_eq!(Value::Str("w1".into()).to_string(), "w1");
        assert_eq!(Value::Str("a b".into()).to_string(), "\"a b\"");
        assert_eq!(Value::Str(String::new()).to_string(), "\"\"");
        assert_eq!(Value::F64(f64::NAN).to_json(), serde_json::json!("NaN"));
    }

    #[test]
    fn the_remote_key_is_the_first_remote_field_present() {
        let f = Fields {
            message: None,
            list: vec![
                ("n", Value::U64(3)),
                ("addr", Value::Str("10.0.0.1:7946".into())),
                ("peer", Value::Str("w2".into())),
            ],
        };
        assert_eq!(f.remote().as_deref(), Some("w2"));
        let f = Fields {
            message: None,
            list: vec![("remote", Value::Str("127.0.0.1:38050".into()))],
        };
        assert_eq!(f.remote().as_deref(), Some("127.0.0.1"));
        assert_eq!(Fields::default().remote(), None);
    }
}
