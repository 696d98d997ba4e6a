// node-vault 0.12 against the Vault-compatible API: KV write/read/list and Transit
// encrypt/decrypt; prints what it saw as one JSON line (NODE_VAULT_DIR holds node_modules).
const vault = require(process.env.NODE_VAULT_DIR + "/node_modules/node-vault")({
  apiVersion: "v1", endpoint: process.env.VAULT_ADDR, token: process.env.VAULT_TOKEN,
});
(async () => {
  const out = {};
  await vault.write("secret/data/u3/slack", { data: { bot_token: "xoxb-1" } });
  out.read = (await vault.read("secret/data/u3/slack")).data.data;
  out.list = (await vault.list("secret/metadata/u3")).data.keys;
  const enc = await vault.write("transit/encrypt/k1", { plaintext: Buffer.from("node").toString("base64") });
  const dec = await vault.write("transit/decrypt/k1", { ciphertext: enc.data.ciphertext });
  out.decrypted = Buffer.from(dec.data.plaintext, "base64").toString();
  try { await vault.read("secret/data/u3/missing"); } catch (e) { out.missing = e.response ? e.response.statusCode : String(e); }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error("FAILED", e.message, e.response && e.response.body); process.exit(1); });
