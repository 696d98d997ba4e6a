//! Integers in request bodies, as JSON has them.
//!
//! JSON has one number type, and JSON Schema counts `276.0` as an integer; some clients (Python's
//! `json.dumps` of a float) write integers that way. The integer fields of request bodies take
//! any number with no fractional part in range (`deserialize_with` = the functions here);
//! anything else is refused with a message naming the type, never the value. Free-form JSON
//! (documents, details, secret data) is never touched: its numbers are stored as sent.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Reads a JSON number with no fractional part into a `u64`.
struct Integral;

impl Visitor<'_> for Integral {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| {
            E::custom("invalid value: a negative number, expected a non-negative integer")
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        // Exactly representable and integral: 2^53 bounds what a float says without loss.
        if v.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&v) {
            Ok(v as u64)
        } else {
            Err(E::custom(
                "invalid value: a number with a fraction or out of range, expected a non-negative integer",
            ))
        }
    }
}

fn integral<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Integral)
}

/// A `u64` field.
pub fn u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    integral(d)
}

/// A `u32` field.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = integral(d)?;
    std::primitive::u32::try_from(v).map_err(|_| {
        de::Error::custom(
            "invalid value: a number out of range, expected a 32-bit unsigned integer",
        )
    })
}

/// An optional `u64` field (absent or `null` is `None`; use with `#[serde(default)]`).
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "u64")] std::primitive::u64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

/// An optional `u32` field (absent or `null` is `None`; use with `#[serde(default)]`).
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "u32")] std::primitive::u32);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

/// An optional `usize` field (absent or `null` is `None`; use with `#[serde(default)]`).
pub fn opt_usize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    opt_u64(d)?
        .map(|v| {
            usize::try_from(v)
                .map_err(|_| de::Error::custom("invalid value: a number out of range"))
        })
        .transpose()
}

/// A list of `u64`.
pub fn vec_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "u64")] std::primitive::u64);
    Ok(Vec::<Wrap>::deserialize(d)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "u32")]
        version: std::primitive::u32,
        #[serde(default, deserialize_with = "opt_u64")]
        cas: Option<std::primitive::u64>,
        #[serde(default, deserialize_with = "vec_u64")]
        versions: Vec<std::primitive::u64>,
    }

    fn parse(text: &str) -> Result<Body, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn integral_numbers_are_integers_whatever_their_spelling() {
        assert_eq!(
            parse(r#"{"version": 276.0, "cas": 1e2, "versions": [1, 2.0]}"#).unwrap(),
            Body {
                version: 276,
                cas: Some(100),
                versions: vec![1, 2]
            }
        );
        assert_eq!(parse(r#"{"version": 1, "cas": null}"#).unwrap().cas, None);
        assert_eq!(
            parse(r#"{"version": 1}"#).unwrap().versions,
            Vec::<std::primitive::u64>::new()
        );
    }

    #[test]
    fn fractions_negatives_strings_and_overflow_are_refused_without_the_value() {
        for bad in [
            r#"{"version": 1.5}"#,
            r#"{"version": -3}"#,
            r#"{"version": "7"}"#,
            r#"{"version": 4294967296}"#,
            r#"{"version": 1, "cas": 1e300}"#,
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                !err.contains("1.5") && !err.contains("4294967296") && !err.contains("1e300"),
                "{err}"
            );
        }
    }
}
