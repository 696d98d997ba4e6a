//! JSON objects kept byte for byte.
//!
//! A secret's `data` and a record's `document` come back exactly as the client sent them: key
//! order, number spelling (`1.10`, integers past 64 bits) and whitespace included. They are
//! held as the sent text ([`RawObject`]), parsed into a map only to validate them and to read
//! fields (index values, look-up re-checks) — never re-serialized from that map. Defaults a
//! collection declares are appended after the sent members when they are missing.

use serde::de::{Error as _, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A JSON object as it was sent.
#[derive(Clone)]
pub struct RawObject(Box<RawValue>);

impl RawObject {
    /// Parses `text`, which must be one JSON object.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// An object made from a map (members in the map's order).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let text = serde_json::to_string(map).unwrap_or_else(|_| "{}".into());
        Self(RawValue::from_string(text).unwrap_or_else(|_| empty()))
    }

    /// The text exactly as sent.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The members as a map, to validate and read fields. Fails only past serde_json's
    /// nesting limit (128), which every caller reports as too deep.
    pub fn to_map(&self) -> Result<Map<String, Value>, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// This object with `extra` members appended after the sent ones.
    pub fn with_members(&self, extra: &[(&str, &Value)]) -> Self {
        if extra.is_empty() {
            return self.clone();
        }
        let text = self.0.get().trim();
        let inner = &text[1..text.len() - 1];
        let mut out = String::with_capacity(text.len() + 32 * extra.len());
        out.push('{');
        out.push_str(inner);
        let mut first = inner.trim().is_empty();
        for (name, value) in extra {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&serde_json::to_string(name).unwrap_or_default());
            out.push(':');
            out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
        }
        out.push('}');
        Self(RawValue::from_string(out).unwrap_or_else(|_| self.0.clone()))
    }
}

fn empty() -> Box<RawValue> {
    RawValue::from_string("{}".into()).expect("{} is JSON")
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(D::Error::invalid_type(
                Unexpected::Other("a JSON value that is not an object"),
                &"a JSON object",
            ));
        }
        Ok(Self(raw))
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl std::fmt::Debug for RawObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Documents and secrets hold personal data: never in debug output.
        f.write_str("RawObject([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENT: &str = r#"{"b":1,"a":18446744073709551617,"c":1.10}"#;

    #[test]
    fn round_trips_byte_for_byte() {
        let raw = RawObject::parse(SENT).unwrap();
        assert_eq!(serde_json::to_string(&raw).unwrap(), SENT);
        let wrapped = format!(r#"{{"document":{SENT}}}"#);
        #[derive(Deserialize, Serialize)]
        struct Body {
            document: RawObject,
        }
        let body: Body = serde_json::from_str(&wrapped).unwrap();
        assert_eq!(serde_json::to_string(&body).unwrap(), wrapped);
        assert_eq!(raw.to_map().unwrap()["b"], 1);
    }

    #[test]
    fn only_objects_and_defaults_go_last() {
        for bad in ["[1]", "1", "\"x\"", "null"] {
            assert!(RawObject::parse(bad).is_err(), "{bad}");
        }
        let raw = RawObject::parse(SENT).unwrap();
        let added = raw.with_members(&[("dark", &Value::Bool(false))]);
        assert_eq!(
            added.as_str(),
            r#"{"b":1,"a":18446744073709551617,"c":1.10,"dark":false}"#
        );
        let empty = RawObject::parse(" { } ").unwrap();
        assert_eq!(
            empty.with_members(&[("x", &Value::from(1))]).as_str(),
            r#"{ "x":1}"#
        );
        assert_eq!(format!("{raw:?}"), "RawObject([redacted])");
    }
}
