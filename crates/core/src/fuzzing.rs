//! Entry points for the fuzz targets in `fuzz/` (not a stable API): each parser core applies
//! to stored or received bytes, behind a function that must return — never panic, hang or
//! allocate without bound — whatever the input.

use strongroom_crypto::{Index, Key, Root};

fn fixed_key<P>() -> Key<P> {
    Key::from_bytes(&[7u8; 32]).expect("32 bytes make a key")
}

/// An events page cursor (`?cursor=` of `GET …/events`).
pub fn events_cursor(text: &str) -> bool {
    crate::events::parse_cursor(text).is_ok()
}

/// A files page cursor (`?cursor=` of `GET …/files`).
pub fn files_cursor(text: &str) -> bool {
    crate::files::parse_cursor(text).is_ok()
}

/// A download link presented to `GET /v1/links/{token}` (checked under a fixed root key).
pub fn download_link(token: &str) -> bool {
    let root: Key<Root> = fixed_key();
    crate::files::links::verify_link(&root, token).is_ok()
}

/// The audit anchor stored in `meta`.
pub fn audit_anchor(bytes: &[u8]) -> bool {
    let key: Key<Index> = fixed_key();
    crate::audit::anchor::decode(&key, bytes).is_ok()
}

/// An authenticated row (token policy, provider, collection, policy) as stored.
pub fn authenticated_row(bytes: &[u8]) -> bool {
    let key: Key<Index> = fixed_key();
    let id = crate::row_auth::RowId::new("provider")
        .field(b"app")
        .field(b"spotify");
    crate::row_auth::open(&key, &id, bytes).is_ok()
}

/// A transit ciphertext as a client sends it (`vault:v<N>:<base64>`).
pub fn transit_ciphertext(text: &str) -> bool {
    crate::transit::parse_ciphertext(text).is_ok()
}

/// The JSON of a stored configuration (read leniently, see `stored_config`).
pub fn stored_config(bytes: &[u8]) -> bool {
    crate::stored_config::decode::<crate::records::CollectionSettings>(bytes, "collection").is_ok()
        | crate::stored_config::decode::<crate::access::Policy>(bytes, "token").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_refuse_garbage() {
        assert!(!events_cursor("x"));
        assert!(events_cursor("1700000000000.00ff"));
        assert!(!files_cursor("1.zz"));
        assert!(!download_link("v1.e30.AAAA"));
        assert!(!audit_anchor(&[1, 2, 3]));
        assert!(!authenticated_row(&[1; 40]));
        assert!(!transit_ciphertext("vault:v1:"));
        assert!(!stored_config(b"[]"));
        assert!(stored_config(br#"{"format":1,"scope":"user","later":[1]}"#));
    }
}
