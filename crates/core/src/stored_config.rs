//! The JSON of configuration kept in authenticated rows (token policies, provider
//! configurations, collection settings, file and suspension policies): versioned, and read
//! leniently so nodes of two releases can share a store during a rolling upgrade.
//!
//! Written as the configuration's own JSON object plus a `"format": 1` member. Read back, a
//! member a newer release added is ignored — at every depth, not only at the top — even though
//! the same types refuse unknown fields in API input (where a typo must be an error, not a
//! silently ignored setting). An incompatible change must raise `FORMAT`; a row of a format
//! this build does not know is refused with a clear error rather than half-understood. Rows
//! written before the member existed carry none and are format 1.
//!
//! Leniency comes from [`Lenient`], a deserializer over a parsed JSON value that hands every
//! struct only the members it declares (serde passes a struct's field names to its
//! deserializer), so `deny_unknown_fields` on the types never sees the rest.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{DeserializeOwned, IntoDeserializer, Visitor};
use serde::{forward_to_deserialize_any, Deserializer, Serialize};
use serde_json::Value;

use crate::{CoreError, CoreResult};

/// The format written; readers accept this and older.
const FORMAT: u64 = 1;
const FORMAT_MEMBER: &str = "format";

/// The stored JSON of `config`.
pub(crate) fn encode<T: Serialize>(config: &T) -> CoreResult<Vec<u8>> {
    let mut value = serde_json::to_value(config).map_err(|e| CoreError::Internal(e.to_string()))?;
    let Value::Object(members) = &mut value else {
        return Err(CoreError::Internal(
            "a stored configuration must be a JSON object".into(),
        ));
    };
    members.insert(FORMAT_MEMBER.into(), FORMAT.into());
    serde_json::to_vec(&value).map_err(|e| CoreError::Internal(e.to_string()))
}

/// A stored configuration (`what` names it in errors). Bytes that are not such a JSON object
/// are an integrity error; a newer format is refused as such.
pub(crate) fn decode<T: DeserializeOwned>(stored: &[u8], what: &'static str) -> CoreResult<T> {
    let mut value: Value =
        serde_json::from_slice(stored).map_err(|_| CoreError::Integrity(what))?;
    let Value::Object(members) = &mut value else {
        return Err(CoreError::Integrity(what));
    };
    match members.remove(FORMAT_MEMBER) {
        None => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|f| (1..=FORMAT).contains(&f)) => {}
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            return Err(CoreError::Internal(format!(
                "a stored {what} has format {n}, which this build does not know (it knows up to {FORMAT}); upgrade strongroom"
            )))
        }
        Some(_) => return Err(CoreError::Integrity(what)),
    }
    T::deserialize(Lenient(value)).map_err(|_| CoreError::Integrity(what))
}

/// A JSON value that deserializes into structs with only the members they declare.
struct Lenient(Value);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Lenient {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A map key: a string that also reads as a number (JSON keys of integer-keyed maps).
struct Key(String);

impl<'de> IntoDeserializer<'de, serde_json::Error> for Key {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! numeric_keys {
    ($($method:ident => $visit:ident : $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0.parse::<$ty>() {
                    Ok(n) => visitor.$visit(n),
                    Err(_) => visitor.visit_string(self.0),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Key {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    numeric_keys! {
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
    }

    forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

fn visit_members<'de, V: Visitor<'de>>(
    members: impl Iterator<Item = (String, Value)>,
    visitor: V,
) -> Result<V::Value, serde_json::Error> {
    let mut map = MapDeserializer::new(members.map(|(k, v)| (Key(k), Lenient(v))));
    let value = visitor.visit_map(&mut map)?;
    map.end()?;
    Ok(value)
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(Lenient));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Value::Object(members) => visit_members(members.into_iter(), visitor),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(members) => visit_members(
                members
                    .into_iter()
                    .filter(|(k, _)| fields.contains(&k.as_str())),
                visitor,
            ),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Lenient(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        kind: String,
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        list: Vec<Inner>,
        by_name: BTreeMap<String, Inner>,
        maybe: Option<Inner>,
    }

    fn sample() -> Outer {
        Outer {
            name: "n".into(),
            list: vec![Inner {
                kind: "a".into(),
                limit: Some(3),
            }],
            by_name: BTreeMap::from([(
                "x".into(),
                Inner {
                    kind: "b".into(),
                    limit: None,
                },
            )]),
            maybe: None,
        }
    }

    #[test]
    fn round_trips_with_a_format_member() {
        let stored = encode(&sample()).unwrap();
        let value: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(value["format"], 1);
        assert_eq!(decode::<Outer>(&stored, "t").unwrap(), sample());
        // Rows from before the member existed.
        let legacy = serde_json::to_vec(&sample()).unwrap();
        assert_eq!(decode::<Outer>(&legacy, "t").unwrap(), sample());
    }

    #[test]
    fn members_a_newer_release_added_are_ignored_at_every_depth() {
        let newer = br#"{"format":1,"name":"n","added":true,
            "list":[{"kind":"a","limit":3,"added":[1]}],
            "by_name":{"x":{"kind":"b","added":{"deep":1}}},
            "maybe":null}"#;
        assert_eq!(decode::<Outer>(newer, "t").unwrap(), sample());
        // The same types still refuse unknown members in input.
        assert!(serde_json::from_slice::<Outer>(newer).is_err());
    }

    #[test]
    fn integer_keyed_maps_read_back() {
        let stored = encode(&BTreeMap::from([(2u32, "b".to_string()), (10, "j".into())])).unwrap();
        let back: BTreeMap<u32, String> = decode(&stored, "t").unwrap();
        assert_eq!(
            back,
            BTreeMap::from([(2, "b".to_string()), (10, "j".into())])
        );
    }

    #[test]
    fn a_newer_format_or_a_damaged_row_is_refused() {
        let future = br#"{"format":2,"name":"n","list":[],"by_name":{},"maybe":null}"#;
        assert!(
            matches!(decode::<Outer>(future, "t"), Err(CoreError::Internal(m)) if m.contains("format 2"))
        );
        for bad in [
            &b"[1]"[..],
            b"not json",
            br#"{"format":"1"}"#,
            br#"{"name":1}"#,
        ] {
            assert!(matches!(
                decode::<Outer>(bad, "t"),
                Err(CoreError::Integrity("t"))
            ));
        }
    }
}
