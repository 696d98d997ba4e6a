"""One hvac scenario over KV v2 and Transit, run unchanged against Strongroom and OpenBao.

Usage: hvac_scenario.py URL TOKEN [--bao]
Prints one JSON object per line: {"step", "outcome", "keys", "value"}:
- outcome: "ok", or the hvac exception class the step raised;
- keys: the sorted keys of the answer's `data` (and of `data.data` / `data.metadata` where
  present), so shapes can be compared without times, ids or ciphertext bytes;
- value: a few values that must agree (decrypted plaintexts, versions, listed keys);
- carry: what later steps need but that differs by nature (ciphertexts): not compared.
With --bao the script first enables the transit engine (Strongroom has it already); that
setup is not part of the comparison.
"""
import base64
import json
import sys
import warnings

import hvac

warnings.filterwarnings("ignore")
url, token = sys.argv[1], sys.argv[2]
client = hvac.Client(url=url, token=token)
if "--bao" in sys.argv:
    client.sys.enable_secrets_engine("transit", path="transit")
kv = client.secrets.kv.v2
transit = client.secrets.transit


def shape(answer):
    if not isinstance(answer, dict):
        return {"status": getattr(answer, "status_code", None)}
    data = answer.get("data")
    keys = {"data": sorted(data.keys()) if isinstance(data, dict) else data}
    if isinstance(data, dict):
        for inner in ("data", "metadata"):
            if isinstance(data.get(inner), dict) and inner == "metadata":
                keys[inner] = sorted(data[inner].keys())
    return keys


def step(name, call, value=None, carry=None):
    try:
        answer = call()
        out = {"step": name, "outcome": "ok", "keys": shape(answer)}
        if value is not None:
            out["value"] = value(answer)
        if carry is not None:
            out["carry"] = carry(answer)
    except hvac.exceptions.VaultError as e:
        out = {"step": name, "outcome": type(e).__name__, "keys": None}
    print(json.dumps(out, sort_keys=True), flush=True)
    return out


b64 = lambda s: base64.b64encode(s).decode()
step("authenticated", lambda: {"data": {"ok": client.is_authenticated()}}, lambda a: a["data"]["ok"])
step("write v1", lambda: kv.create_or_update_secret(path="u1/spotify", secret={"a": "1"}), lambda a: a["data"]["version"])
step("write cas 1", lambda: kv.create_or_update_secret(path="u1/spotify", secret={"a": "2"}, cas=1), lambda a: a["data"]["version"])
step("write cas 0 on an existing key", lambda: kv.create_or_update_secret(path="u1/spotify", secret={"a": "3"}, cas=0))
step("write cas stale", lambda: kv.create_or_update_secret(path="u1/spotify", secret={"a": "3"}, cas=1))
step("read latest", lambda: kv.read_secret_version(path="u1/spotify"), lambda a: a["data"]["data"])
step("read version 1", lambda: kv.read_secret_version(path="u1/spotify", version=1), lambda a: a["data"]["data"])
step("read missing", lambda: kv.read_secret_version(path="u1/nothing"))
step("second secret", lambda: kv.create_or_update_secret(path="u1/github", secret={"t": "x"}))
step("list user", lambda: kv.list_secrets(path="u1"), lambda a: sorted(a["data"]["keys"]))
step("list missing user", lambda: kv.list_secrets(path="nobody"))
step("read metadata", lambda: kv.read_secret_metadata(path="u1/spotify"), lambda a: a["data"]["current_version"])
step("update metadata", lambda: kv.update_metadata(path="u1/spotify", max_versions=5))
step("patch", lambda: kv.patch(path="u1/spotify", secret={"b": "x"}), lambda a: a["data"]["version"])
step("read patched", lambda: kv.read_secret_version(path="u1/spotify"), lambda a: a["data"]["data"])
step("delete latest", lambda: kv.delete_latest_version_of_secret(path="u1/spotify"))
step("read deleted", lambda: kv.read_secret_version(path="u1/spotify"))
step("read deleted, no raise", lambda: kv.read_secret_version(path="u1/spotify", raise_on_deleted_version=False), lambda a: a["data"]["metadata"]["version"])
step("undelete", lambda: kv.undelete_secret_versions(path="u1/spotify", versions=[3]))
step("read undeleted", lambda: kv.read_secret_version(path="u1/spotify"), lambda a: a["data"]["metadata"]["version"])
step("delete versions", lambda: kv.delete_secret_versions(path="u1/spotify", versions=[2]))
step("destroy version 1", lambda: kv.destroy_secret_versions(path="u1/spotify", versions=[1]))
step("read destroyed", lambda: kv.read_secret_version(path="u1/spotify", version=1))
step("read destroyed, no raise", lambda: kv.read_secret_version(path="u1/spotify", version=1, raise_on_deleted_version=False), lambda a: a["data"]["metadata"]["destroyed"])
step("delete metadata", lambda: kv.delete_metadata_and_all_versions(path="u1/github"))
step("read purged", lambda: kv.read_secret_version(path="u1/github"))
step("kv config", lambda: kv.read_configuration())

step("create key", lambda: transit.create_key(name="k1"), lambda a: a["data"]["latest_version"] if a and a.get("data") else None)
step("create key again", lambda: transit.create_key(name="k1"))
step("read key", lambda: transit.read_key(name="k1"), lambda a: sorted(a["data"]["keys"].keys()))
step("list keys", lambda: transit.list_keys(), lambda a: a["data"]["keys"])
enc = step("encrypt", lambda: transit.encrypt_data(name="k1", plaintext=b64(b"hello")), carry=lambda a: a["data"]["ciphertext"])
ct = enc.get("carry", "")
step("decrypt", lambda: transit.decrypt_data(name="k1", ciphertext=ct), lambda a: base64.b64decode(a["data"]["plaintext"]).decode())
enc_ad = step("encrypt with associated data", lambda: transit.encrypt_data(name="k1", plaintext=b64(b"bound"), associated_data=b64(b"ctx")), carry=lambda a: a["data"]["ciphertext"])
step("decrypt without the associated data", lambda: transit.decrypt_data(name="k1", ciphertext=enc_ad.get("carry", "")))
step("decrypt with the associated data", lambda: transit.decrypt_data(name="k1", ciphertext=enc_ad.get("carry", ""), associated_data=b64(b"ctx")), lambda a: base64.b64decode(a["data"]["plaintext"]).decode())
tampered = ct[:-4] + ("AAAA" if not ct.endswith("AAAA") else "BBBB")
step("decrypt tampered", lambda: transit.decrypt_data(name="k1", ciphertext=tampered))
step("decrypt garbage", lambda: transit.decrypt_data(name="k1", ciphertext="garbage"))
step("rotate", lambda: transit.rotate_key(name="k1"), lambda a: a["data"]["latest_version"] if a and a.get("data") else None)
step("rewrap", lambda: transit.rewrap_data(name="k1", ciphertext=ct), lambda a: a["data"]["key_version"])
step("encrypt old version", lambda: transit.encrypt_data(name="k1", plaintext=b64(b"x"), key_version=1), lambda a: a["data"]["key_version"])
step("encrypt future version", lambda: transit.encrypt_data(name="k1", plaintext=b64(b"x"), key_version=9))
step("batch encrypt", lambda: transit.encrypt_data(name="k1", batch_input=[{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}]), lambda a: len(a["data"]["batch_results"]))
step("batch with a bad item", lambda: transit.encrypt_data(name="k1", batch_input=[{"plaintext": b64(b"a")}, {"plaintext": "!!"}]))
step("datakey plaintext", lambda: transit.generate_data_key(name="k1", key_type="plaintext"), lambda a: len(base64.b64decode(a["data"]["plaintext"])))
step("datakey wrapped", lambda: transit.generate_data_key(name="k1", key_type="wrapped"))
step("configure", lambda: transit.update_key_configuration(name="k1", min_decryption_version=2, deletion_allowed=True))
step("decrypt below the minimum", lambda: transit.decrypt_data(name="k1", ciphertext=ct))
step("derived key", lambda: transit.create_key(name="d1", derived=True))
step("derived without context", lambda: transit.encrypt_data(name="d1", plaintext=b64(b"x")))
enc_ctx = step("derived with context", lambda: transit.encrypt_data(name="d1", plaintext=b64(b"per-user"), context=b64(b"user-1")), carry=lambda a: a["data"]["ciphertext"])
step("derived, other context", lambda: transit.decrypt_data(name="d1", ciphertext=enc_ctx.get("carry", ""), context=b64(b"user-2")))
step("derived, same context", lambda: transit.decrypt_data(name="d1", ciphertext=enc_ctx.get("carry", ""), context=b64(b"user-1")), lambda a: base64.b64decode(a["data"]["plaintext"]).decode())
step("delete not allowed", lambda: transit.delete_key(name="d1"))
step("delete allowed", lambda: transit.delete_key(name="k1"))
step("read deleted key", lambda: transit.read_key(name="k1"))
step("health", lambda: {"data": client.sys.read_health_status(method="GET")}, lambda a: a["data"]["sealed"])
step("lookup self", lambda: client.lookup_token())
bad = hvac.Client(url=url, token="not-a-token")
step("bad token authenticated", lambda: {"data": {"ok": bad.is_authenticated()}}, lambda a: a["data"]["ok"])
step("bad token read", lambda: bad.secrets.kv.v2.read_secret_version(path="u1/spotify"))
