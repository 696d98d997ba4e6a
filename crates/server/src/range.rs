//! The `Range` request header of file downloads: `bytes=first-last`, `bytes=first-` or
//! `bytes=-count`, one range only. Whether it fits the file is decided by core.

use strongroom_core::files::ByteRange;

const RULE: &str = "Range must be one byte range: bytes=first-last, bytes=first- or bytes=-count";

/// Parses a `Range` header value; the error is the message to answer with.
pub fn parse(value: &[u8]) -> Result<ByteRange, String> {
    let bad = || RULE.to_string();
    let text = std::str::from_utf8(value).map_err(|_| bad())?.trim();
    let spec = text.strip_prefix("bytes=").ok_or_else(bad)?.trim();
    if spec.contains(',') {
        return Err(bad());
    }
    let (first, last) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, false) => Ok(ByteRange::Suffix(num(last)?)),
        (false, true) => Ok(ByteRange::From(num(first)?)),
        (false, false) => Ok(ByteRange::Bounded {
            first: num(first)?,
            last: num(last)?,
        }),
        (true, true) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_and_nothing_else() {
        assert!(matches!(
            parse(b"bytes=0-9"),
            Ok(ByteRange::Bounded { first: 0, last: 9 })
        ));
        assert!(matches!(parse(b"bytes=5-"), Ok(ByteRange::From(5))));
        assert!(matches!(parse(b"bytes=-5"), Ok(ByteRange::Suffix(5))));
        for bad in [
            &b"bytes=-"[..],
            b"bytes=0-1,2-3",
            b"items=0-1",
            b"bytes=a-b",
            b"\xff",
        ] {
            assert!(parse(bad).is_err());
        }
    }
}
