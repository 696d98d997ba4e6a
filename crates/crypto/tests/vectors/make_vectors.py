"""Computes the pinned format vectors of Strongroom independently of its Rust code.

Run once to produce vectors; the hex values are then pasted into the tests and never
regenerated (a test that fails means the format changed — make a new version instead).
Uses only the Python standard library and `cryptography` (AES-GCM).
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def ad(purpose, *fields):
    out = b"strongroom/v1" + struct.pack(">I", len(purpose)) + purpose
    for f in fields:
        out += struct.pack(">I", len(f)) + f
    return out


def num(n):
    return struct.pack(">Q", n)


def mac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def derive(key, label):
    return mac(key, b"strongroom/v1/derive/" + label + b"\x01")


def envelope(key, version, nonce, ad_bytes, plaintext):
    header = b"\x01\x01" + struct.pack(">I", version) + nonce
    return header + AESGCM(key).encrypt(nonce, plaintext, header + ad_bytes)


ROOT = bytes(range(32))
DATA = bytes(range(32, 64))
INDEX = bytes(range(64, 96))
NONCE = bytes(range(100, 112))

print("derive(root, 'audit-chain') =", derive(ROOT, b"audit-chain").hex())
print("derive(root, 'row-auth') =", derive(ROOT, b"row-auth").hex())
print("derive(root, 'file-links') =", derive(ROOT, b"file-links").hex())
print("hmac(index, 'user-42') =", mac(INDEX, b"user-42").hex())
print("token digest =", hashlib.sha256(b"strongroom/v1/api-token" + b"A" * 43).hexdigest())
cred_ad = ad(b"credential", b"app", b"\xaa" * 32, b"spotify", num(7))
print("ad(credential) =", cred_ad.hex())
print("envelope =", envelope(DATA, 3, NONCE, cred_ad, b'{"type":"secret"}').hex())
print("root check =", envelope(ROOT, 0, NONCE, ad(b"root-key-check"), b"strongroom root key check v1").hex())

# Segmented file: segment size 16, file id bytes 0x01..0x10, prefix 7 bytes, 20-byte plaintext.
file_id = bytes(range(1, 17))
file_key = derive(DATA, b"file/" + file_id.hex().encode())
header = b"\x01\x01" + struct.pack(">I", 16) + bytes(range(200, 207))
file_ad = ad(b"file", b"app", b"\xaa" * 32, b"f1")
pt = b"0123456789abcdefXYZW"
segs = b""
for i, (chunk, last) in enumerate([(pt[:16], False), (pt[16:], True)]):
    nonce = bytes(range(200, 207)) + struct.pack(">I", i) + bytes([int(last)])
    segs += AESGCM(file_key).encrypt(nonce, chunk, header + file_ad)
print("segmented =", (header + segs).hex())

# core keyed hashes and chains
print("event type hash =", mac(INDEX, b"event-type\x00login").hex())
print("record index hash =", mac(INDEX, b"record-index\x00profiles\x00email\x00\"a@x.org\"").hex())
chain_key = derive(ROOT, b"audit-chain")
entry = ad(b"audit-entry", b"\x00" * 32, num(1), num(1700000000000), b"0123456789abcdef",
           b"credential.read", b"app", b"ab" * 32, b"spotify", b"ok")
print("audit chain hash =", mac(chain_key, entry).hex())
anchor_key = derive(ROOT, b"audit-anchor")
print("audit anchor mac =", mac(anchor_key, ad(b"audit-anchor", num(5), b"\x11" * 32)).hex())
print("link mac =", mac(derive(ROOT, b"file-links"), b"file-link/v1.eyJ4IjoxfQ").hex())
row = ad(b"row", b"credential pointer", b"app", b"\xaa" * 32, b"spotify", num(7), b"")
print("credential pointer mac =", mac(derive(ROOT, b"row-auth"), row).hex())

# Every associated-data context of core (keyring::contexts), as SHA-256 of its encoding.
U = b"\xaa" * 32
contexts = {
    "kek": ad(b"namespace-kek", b"app", num(2)),
    "index_key": ad(b"namespace-index-key", b"app"),
    "user_key": ad(b"user-data-key", b"app", U),
    "user_id": ad(b"user-id", b"app", U),
    "event": ad(b"event", b"app", U, num(1700000000000), b"\x01" * 16),
    "record": ad(b"record", b"app", b"profiles", U, b"me", num(3)),
    "file": ad(b"file", b"app", U, b"f1"),
    "file_metadata": ad(b"file-metadata", b"app", U, b"f1"),
    "provider_secret": ad(b"provider-secret", b"app", b"spotify"),
    "credential": ad(b"credential", b"app", U, b"spotify", num(7)),
}
for name, value in contexts.items():
    print(f"context {name} =", hashlib.sha256(value).hexdigest())

# Sealed names (core::sealed_names): name ids under the namespace index key, audit names under
# a root-derived key (16 bytes kept), and the contexts of the sealed copies.
import base64


def name_id(digest):
    return "~" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


print("credential name id =", name_id(mac(INDEX, ad(b"credential-name", b"spotify"))))
print("record key id =", name_id(mac(INDEX, ad(b"record-key", b"profiles", b"me"))))
print("audit name =", name_id(mac(derive(ROOT, b"audit-name"), ad(b"audit-name", b"spotify"))[:16]))
for name, value in {
    "credential_name": ad(b"credential-name", b"app", U, b"~id"),
    "record_key": ad(b"record-key", b"app", b"profiles", U, b"~id"),
}.items():
    print(f"context {name} =", hashlib.sha256(value).hexdigest())

# Transit (crypto::transit): a derived key for context "user-1", and a body (nonce 0x64..0x6f).
TRANSIT = bytes(range(32))
print("transit derived =", mac(TRANSIT, b"strongroom/v1/transit-context" + b"user-1" + b"\x01").hex())
tn = bytes(range(100, 112))
print("transit body =", (tn + AESGCM(TRANSIT).encrypt(tn, b"hello", b"ad")).hex())
