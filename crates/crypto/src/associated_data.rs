//! Associated data: the context a ciphertext is bound to.
//!
//! Fields are length-prefixed so that no two different field lists encode to the same bytes
//! (`("ab","c")` and `("a","bc")` differ). The first field is always a purpose label, so a
//! ciphertext made for one purpose (a credential) can never be opened as another (a wrapped key).

/// A canonical, length-prefixed encoding of the context a ciphertext belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct AssociatedData {
    bytes: Vec<u8>,
}

impl AssociatedData {
    /// Starts the associated data for `purpose` (a frozen label such as `"credential"`).
    pub fn new(purpose: &str) -> Self {
        let mut ad = Self {
            bytes: Vec::with_capacity(96),
        };
        ad.bytes.extend_from_slice(b"strongroom/v1");
        ad.push(purpose.as_bytes());
        ad
    }

    /// Appends a byte-string field.
    pub fn field(mut self, value: impl AsRef<[u8]>) -> Self {
        self.push(value.as_ref());
        self
    }

    /// Appends an integer field.
    pub fn number(mut self, value: u64) -> Self {
        self.push(&value.to_be_bytes());
        self
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn push(&mut self, value: &[u8]) {
        self.bytes
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(value);
    }
}

impl std::fmt::Debug for AssociatedData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Associated data may contain keyed hashes of user ids; keep it out of debug output.
        f.write_str("AssociatedData([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_are_unambiguous() {
        let a = AssociatedData::new("x").field("ab").field("c");
        let b = AssociatedData::new("x").field("a").field("bc");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn purpose_separates_domains() {
        let a = AssociatedData::new("credential").field("n");
        let b = AssociatedData::new("wrapped-key").field("n");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }
}
