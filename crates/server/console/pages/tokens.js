// Tokens (operators): create one (its secret shown once, with a copy button), list them, revoke,
// and release tokens suspended after repeated denials.

import * as api from "../api.js";
import { h, section, table, badge, when, later, code, form, field, input, button, confirm, toast, fill, secretOnce } from "../dom.js";

const CAPABILITIES = ["read", "write", "delete", "list", "export", "erase", "admin"];

function createForm(ctx, shown) {
  const name = input({ name: "name", required: true, placeholder: "e.g. musicbot-app" });
  const namespaces = input({ name: "namespaces", required: true, value: ctx.namespace || "", placeholder: "musicbot (comma-separated, or *)" });
  const boxes = CAPABILITIES.map((cap) => h("input", { type: "checkbox", value: cap, checked: ["read", "write", "list"].includes(cap) }));
  const expires = input({ name: "expires_in_days", type: "number", min: "1", placeholder: "never" });
  const rate = input({ name: "rate_limit_per_sec", type: "number", min: "1", placeholder: "unlimited" });
  return form({ class: "grid", "aria-label": "Create a token" }, [
    field("Name", name),
    field("Namespaces", namespaces),
    h("fieldset", {}, h("legend", {}, "Capabilities"), ...boxes.map((box) => h("label", { class: "check" }, box, ` ${box.value}`))),
    field("Expires after (days)", expires),
    field("Rate limit (requests/s)", rate),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create token")),
  ], async () => {
    const body = {
      name: name.value.trim(),
      namespaces: namespaces.value.split(",").map((n) => n.trim()).filter(Boolean),
      capabilities: boxes.filter((b) => b.checked).map((b) => b.value),
    };
    if (expires.value) body.expires_in_secs = Number(expires.value) * 86400;
    if (rate.value) body.rate_limit_per_sec = Number(rate.value);
    const made = await api.post("/v1/sys/tokens", body);
    fill(shown, secretOnce(`Token ${made.name} (${made.id})`, made.token));
    name.value = "";
    toast(`Created token ${made.id}`);
    fill(document.getElementById("token-list"), later(() => list(ctx)));
  });
}

async function list(ctx) {
  const items = await api.all("/v1/sys/tokens");
  return table(
    [
      ["Id", (t) => code(t.id)],
      ["Name", (t) => t.name],
      ["Namespaces", (t) => t.policy.namespaces.join(", ")],
      ["Capabilities", (t) => t.policy.capabilities.join(", ")],
      ["Created", (t) => when(t.created_at)],
      ["Expires", (t) => when(t.expires_at)],
      ["State", (t) => (t.revoked_at ? badge("revoked", "bad") : t.expires_at && new Date(t.expires_at) < new Date() ? badge("expired", "bad") : badge("active", "good"))],
      ["", (t) =>
        t.revoked_at
          ? ""
          : button(
              "Revoke…",
              async () => {
                const self = t.id === ctx.tokenId ? " This is the token you are signed in with." : "";
                if (!(await confirm(`Revoke token ${t.name} (${t.id})? Apps using it are refused from now on.${self}`, { action: "Revoke", danger: true }))) return;
                await api.del(`/v1/sys/tokens/${api.seg(t.id)}`);
                toast(`Revoked ${t.id}`);
                ctx.refresh();
              },
              { class: "danger", "aria-label": `Revoke token ${t.name}` },
            )],
    ],
    items,
    { label: "Tokens" },
  );
}

async function suspended(ctx) {
  const items = (await api.get("/v1/sys/tokens/suspended")).items;
  return table(
    [
      ["Token", (s) => code(s.token_id)],
      ["Suspended until", (s) => when(s.until)],
      ["", (s) =>
        button("Unsuspend", async () => {
          await api.post(`/v1/sys/tokens/${api.seg(s.token_id)}/unsuspend`);
          toast("Unsuspended");
          ctx.refresh();
        })],
    ],
    items,
    { empty: "No token is suspended (tokens are suspended after repeated denials).", label: "Suspended tokens" },
  );
}

export default async function tokens(ctx) {
  const shown = h("div", { "aria-live": "polite" });
  return h(
    "div",
    { class: "stack" },
    section("Create a token", createForm(ctx, shown), shown),
    section("Tokens", h("div", { id: "token-list" }, later(() => list(ctx)))),
    section("Suspended tokens", later(() => suspended(ctx))),
  );
}
