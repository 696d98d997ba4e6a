// OAuth: the namespace's providers (the client secret can be written, never read back), and the
// credential-status board — who needs attention (refresh failed, needs re-authorization) — with
// force refresh and revoke on each credential.

import * as api from "../api.js";
import { h, section, table, badge, when, later, code, notice, form, field, input, select, button, confirm, toast, link } from "../dom.js";

const STATUSES = ["", "refresh_failed", "needs_reauthorization", "revoked", "valid"];

/** Force refresh and revoke for one credential (shared with the users page). */
export function credentialActions(ctx, userId, name, done) {
  const cred = (rest) => api.user(ctx.namespace, userId, `/credentials/${api.seg(name)}${rest}`);
  return h(
    "div",
    { class: "row" },
    ctx.can("read")
      ? button(
          "Force refresh",
          async () => {
            try {
              const token = await api.post(cred("/access-token"), { force: true });
              toast(`Refreshed ${name}: valid until ${token.expires_at || "no expiry given"}`);
            } finally {
              done();
            }
          },
          { "aria-label": `Force refresh ${name} of ${userId}` },
        )
      : null,
    ctx.can("delete")
      ? button(
          "Revoke…",
          async () => {
            const sure = await confirm(`Revoke ${name} of ${userId} at its provider and delete it?`, { action: "Revoke", danger: true });
            if (!sure) return;
            await api.post(cred("/revoke"), {});
            toast(`Revoked ${name}`);
            done();
          },
          { class: "danger", "aria-label": `Revoke ${name} of ${userId}` },
        )
      : null,
  );
}

async function board(ctx, status) {
  const filter = select(STATUSES.map((s) => ({ value: s, label: s || "any status" })), { name: "status" });
  filter.value = status || "";
  filter.addEventListener("change", () => ctx.go("oauth", { status: filter.value }));
  const items = (await api.get(api.ns(ctx.namespace, `/credential-status${api.query({ status })}`))).items;
  return h(
    "div",
    {},
    field("Show", filter),
    table(
      [
        ["User", (s) => h("a", { href: link("users", { user: s.user }) }, s.user)],
        ["Credential", (s) => code(s.name)],
        ["Status", (s) => badge(s.status)],
        ["Error", (s) => s.error || "—"],
        ["Since", (s) => when(s.updated_at)],
        ["Verified", (s) => (s.verified === null || s.verified === undefined ? "—" : h("span", {}, String(s.verified), " · ", when(s.last_verified_at)))],
        ["", (s) => credentialActions(ctx, s.user, s.name, () => ctx.refresh())],
      ],
      items,
      { empty: status ? `No credential is ${status}.` : "No OAuth credential has a status yet.", label: "Credential status" },
    ),
  );
}

function providerForm(ctx, existing) {
  const name = input({ name: "name", required: true, value: existing ? existing.name : "", readonly: Boolean(existing) });
  const tokenUrl = input({ name: "token_url", type: "url", required: true, value: existing ? existing.token_url : "" });
  const clientId = input({ name: "client_id", required: true, value: existing ? existing.client_id : "" });
  const secret = input({ name: "client_secret", type: "password", required: true, autocomplete: "new-password" });
  const method = select(["client_secret_basic", "client_secret_post"], { name: "auth_method" });
  if (existing) method.value = existing.auth_method;
  const revocation = input({ name: "revocation_url", type: "url", value: (existing && existing.revocation_url) || "" });
  const verify = input({ name: "verify_url", type: "url", value: (existing && existing.verify_url) || "" });
  return form({ class: "grid", "aria-label": existing ? `Edit provider ${existing.name}` : "Add a provider" }, [
    field("Name", name),
    field("Token URL", tokenUrl),
    field("Client id", clientId),
    field("Client secret", secret, existing ? "Write-only: type it again to save (it is never shown or sent back)." : "Write-only: never shown again."),
    field("Client authentication", method),
    field("Revocation URL (optional)", revocation),
    field("Verify URL (optional)", verify),
    h("div", { class: "actions" }, h("button", { type: "submit" }, existing ? "Save provider" : "Add provider")),
  ], async () => {
    const body = { token_url: tokenUrl.value, client_id: clientId.value, client_secret: secret.value, auth_method: method.value };
    if (revocation.value) body.revocation_url = revocation.value;
    if (verify.value) body.verify_url = verify.value;
    if (existing) {
      for (const key of ["verify_success", "verify_secret_field", "refresh_margin_secs", "extra_params"]) {
        if (existing[key] !== undefined && existing[key] !== null) body[key] = existing[key];
      }
    }
    await api.put(api.ns(ctx.namespace, `/providers/${api.seg(name.value)}`), body);
    secret.value = "";
    toast(`Saved provider ${name.value}`);
    ctx.go("oauth");
    ctx.refresh();
  });
}

async function providers(ctx) {
  const items = (await api.get(api.ns(ctx.namespace, "/providers"))).items;
  const editor = h("div", {});
  const admin = ctx.can("admin");
  return h(
    "div",
    {},
    table(
      [
        ["Name", (p) => code(p.name)],
        ["Token URL", (p) => p.token_url],
        ["Client id", (p) => p.client_id],
        ["Client secret", () => h("span", { class: "muted" }, "set (write-only)")],
        ["Verify URL", (p) => p.verify_url || "—"],
        ["", (p) =>
          admin
            ? h(
                "div",
                { class: "row" },
                button("Edit", () => editor.replaceChildren(providerForm(ctx, p)), { "aria-label": `Edit provider ${p.name}` }),
                button("Delete…", async () => {
                  if (!(await confirm(`Delete provider ${p.name}? Credentials that name it can no longer be refreshed.`, { action: "Delete", danger: true }))) return;
                  await api.del(api.ns(ctx.namespace, `/providers/${api.seg(p.name)}`));
                  toast(`Deleted provider ${p.name}`);
                  ctx.refresh();
                }, { class: "danger", "aria-label": `Delete provider ${p.name}` }),
              )
            : ""],
      ],
      items,
      { empty: "No providers yet.", label: "Providers" },
    ),
    admin ? h("div", { class: "row" }, button("Add a provider", () => editor.replaceChildren(providerForm(ctx, null)))) : notice("Changing providers needs admin in this namespace."),
    editor,
  );
}

export default async function oauth(ctx, params) {
  const status = params.get("status") || "";
  const parts = [];
  if (ctx.can("list")) parts.push(section("Credential status", later(() => board(ctx, status))));
  else parts.push(section("Credential status", notice("The status board needs the list capability.")));
  if (ctx.can("list")) parts.push(section("Providers", later(() => providers(ctx))));
  return h("div", { class: "stack" }, ...parts);
}
