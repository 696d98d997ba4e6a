//! Pinned formats: bytes computed outside this code base (`vectors/make_vectors.py`, Python's
//! `hmac`, `hashlib` and `cryptography`'s AES-GCM) from fixed keys and nonces. These hex
//! values are never regenerated: a failure here means a stored or exchanged format changed,
//! which must instead become a new format version with a migration.

use strongroom_crypto::segmented::{FileHeader, SegmentCipher};
use strongroom_crypto::token::ApiToken;
use strongroom_crypto::{root_key, AssociatedData, Data, Index, Key, Root};

fn key<P>(first: u8) -> Key<P> {
    let bytes: Vec<u8> = (first..first + 32).collect();
    Key::from_bytes(&bytes).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn credential_ad() -> AssociatedData {
    AssociatedData::new("credential")
        .field("app")
        .field([0xaa; 32])
        .field("spotify")
        .number(7)
}

#[test]
fn associated_data_is_length_prefixed() {
    assert_eq!(
        hex(credential_ad().as_bytes()),
        "7374726f6e67726f6f6d2f76310000000a63726564656e7469616c0000000361707000000020aaaaaaaa\
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0000000773706f74696679000000\
         080000000000000007"
    );
}

#[test]
fn key_derivation_and_keyed_hash() {
    let root: Key<Root> = key(0);
    for (label, expected) in [
        (
            "audit-chain",
            "b3d6541189e3cf19d61ee7acb913652509095976ecfbed2776af5f0d16229be3",
        ),
        (
            "row-auth",
            "33caafcdfac27a7c849725d219f796a3400c2b7bc1e151f1e59b1cdfd59a1576",
        ),
        (
            "file-links",
            "d465f9ed184cb702f5888f81db5a3b996dba63925d2c55f246f01643f48089ba",
        ),
    ] {
        let derived: Key<Index> = root.derive(label).unwrap();
        assert_eq!(hex(derived.expose_bytes()), expected, "{label}");
    }
    // The user hash: HMAC-SHA-256 of the raw user id under the namespace index key.
    let index: Key<Index> = key(64);
    assert_eq!(
        hex(&index.mac(b"user-42")),
        "39a3fdaa3bc6684547e3a12d4a44c3adf84ea09a46524476999db34778400d9a"
    );
}

#[test]
fn api_token_digest_is_sha256_of_the_secret_part() {
    let secret = "A".repeat(43);
    let token = ApiToken::parse(&format!("sr_0123456789abcdef_{secret}")).unwrap();
    assert_eq!(
        hex(&token.hash()),
        "e9422753fb4a7923282889e93360b3444efadf203e3352b56291692146fbd3c3"
    );
}

#[test]
fn envelope_opens_as_pinned() {
    let data: Key<Data> = key(32);
    let envelope = unhex(
        "0101000000036465666768696a6b6c6d6e6fce4ffaaaafd4d6f7fe27babbf872ea4fb44c9da6d1c73d93\
         8079a269d48528edcc",
    );
    let plain = data.open(&credential_ad(), &envelope).unwrap();
    assert_eq!(plain.as_slice(), br#"{"type":"secret"}"#);
    assert_eq!(
        strongroom_crypto::envelope::header(&envelope)
            .unwrap()
            .key_version,
        3
    );
}

#[test]
fn root_key_check_value_verifies_as_pinned() {
    let root: Key<Root> = key(0);
    let check = unhex(
        "0101000000006465666768696a6b6c6d6e6f3b6fac09178e24f1510f7f9ab50a1edd29a77f2ae8049611\
         ccf1da79eee3ee8aa94103f0814509f9e01bde74",
    );
    assert!(root_key::verify_check(&root, &check));
}

#[test]
fn segmented_file_opens_as_pinned() {
    let data: Key<Data> = key(32);
    let stored = unhex(
        "010100000010c8c9cacbcccdce05b8a60ac490181fceb786936fa648ff1b9dacc3aaa9c52865a15b76d2\
         afc50aa68a5d9da5907b6124725d77b4e682472874f9fe",
    );
    let header = FileHeader::parse(&stored).unwrap();
    assert_eq!(header.segment_size, 16);
    let file_id: Vec<u8> = (1..=16).collect();
    let ad = AssociatedData::new("file")
        .field("app")
        .field([0xaa; 32])
        .field("f1");
    let cipher = SegmentCipher::new(&data, &file_id, header, &ad).unwrap();
    let first = header.segment_offset(0) as usize;
    let second = header.segment_offset(1) as usize;
    let a = cipher.open(0, &stored[first..second], false).unwrap();
    let b = cipher.open(1, &stored[second..], true).unwrap();
    assert_eq!(
        [a.as_slice(), b.as_slice()].concat(),
        b"0123456789abcdefXYZW"
    );
    // Position and finality are bound: the first segment does not open as the last.
    assert!(cipher.open(0, &stored[first..second], true).is_err());
}
