// Audit (operators): search the log by action, outcome, token, namespace, user id (hashed by
// the server the way entries carry it), credential name or event type, and time range, newest
// first, a page at a time; and verify the hash chain, showing where it breaks.

import * as api from "../api.js";
import { h, section, table, badge, when, code, form, field, input, select, button, fill, notice, link } from "../dom.js";

const OUTCOMES = ["", "ok", "denied", "not_found", "conflict", "invalid", "integrity_error", "error"];
const FILTERS = ["action", "outcome", "token_id", "namespace", "user", "name", "since", "until", "order"];

/** `datetime-local` (the operator's clock) → RFC 3339 UTC, and back. */
const toRfc3339 = (local) => (local ? new Date(local).toISOString() : "");
function toLocal(rfc) {
  if (!rfc) return "";
  const d = new Date(rfc);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A long hash cut to its start (the whole of it in the tooltip). */
function short(text) {
  if (!text) return "—";
  return text.length > 14 ? h("span", { title: text }, `${text.slice(0, 12)}…`) : text;
}

function searchForm(ctx, params) {
  const controls = {
    action: input({ name: "action", placeholder: "e.g. credential.read" }),
    outcome: select(OUTCOMES, { name: "outcome" }),
    token_id: input({ name: "token_id", placeholder: "token id" }),
    namespace: input({ name: "namespace", placeholder: "namespace" }),
    user: input({ name: "user", placeholder: "the app's user id" }),
    name: input({ name: "name", placeholder: "credential name or event type" }),
    since: input({ name: "since", type: "datetime-local" }),
    until: input({ name: "until", type: "datetime-local" }),
    order: select([{ value: "newest", label: "newest first" }, { value: "oldest", label: "oldest first" }], { name: "order" }),
  };
  for (const key of FILTERS) {
    const value = params.get(key) || "";
    controls[key].value = key === "since" || key === "until" ? toLocal(value) : value;
  }
  if (!params.get("order")) controls.order.value = "newest";
  return form({ class: "grid", role: "search", "aria-label": "Search the audit log" }, [
    field("Action", controls.action),
    field("Outcome", controls.outcome),
    field("Token id", controls.token_id),
    field("Namespace", controls.namespace),
    field("User id", controls.user, "Needs the namespace: the server hashes it per namespace."),
    field("Name", controls.name, "Hashed by the server: entries never hold names."),
    field("From", controls.since),
    field("To", controls.until),
    field("Order", controls.order),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Search")),
  ], async () => {
    const next = {};
    for (const key of FILTERS) {
      const value = controls[key].value.trim();
      next[key] = key === "since" || key === "until" ? toRfc3339(value) : value;
    }
    ctx.go("audit", next);
  });
}

function results(ctx, params) {
  const box = h("div", { "aria-live": "polite" });
  const filters = {};
  for (const key of FILTERS) if (params.get(key)) filters[key] = params.get(key);
  if (!filters.order) filters.order = "newest";
  const load = async (cursor) => {
    const page = await api.get(`/v1/sys/audit${api.query({ ...filters, cursor, limit: 50 })}`);
    fill(
      box,
      table(
        [
          ["#", (e) => String(e.seq)],
          ["Time", (e) => when(e.time)],
          ["Token", (e) => (e.token_id ? h("a", { href: link("audit", { token_id: e.token_id }), title: e.token_id }, e.token_id.length > 20 ? `${e.token_id.slice(0, 18)}…` : e.token_id) : "—")],
          ["Action", (e) => code(e.action)],
          ["Namespace", (e) => e.namespace || "—"],
          ["User (hash)", (e) => short(e.user_hash)],
          ["Target", (e) => short(e.target)],
          ["Outcome", (e) => badge(e.outcome)],
        ],
        page.items,
        { empty: "No entry matches.", label: "Audit entries" },
      ),
      h(
        "div",
        { class: "row" },
        cursor ? button("First page", () => load("")) : null,
        page.next_cursor ? button(filters.order === "newest" ? "Older entries" : "Newer entries", () => load(page.next_cursor)) : null,
      ),
    );
  };
  load(params.get("cursor") || "").catch((err) => fill(box, notice(`${err.message} (${err.code})`, "error")));
  return box;
}

function verify() {
  const out = h("div", { "aria-live": "polite" });
  return h(
    "div",
    {},
    h("p", {}, "Recomputes the whole hash chain and checks it against the anchor in the database."),
    button("Verify the chain", async () => {
      fill(out, h("p", { class: "muted" }, "Verifying…"));
      const report = await api.post("/v1/sys/audit/verify");
      const losses = report.acknowledged_losses.map((l) => h("li", {}, `#${l.seq} at `, when(l.time), `: ${l.what}`));
      fill(
        out,
        report.valid
          ? h("p", {}, badge("valid", "good"), ` ${report.entries_checked} entries checked; the chain is whole.`)
          : h(
              "div",
              { role: "alert" },
              h("p", {}, badge("broken", "bad"), ` after ${report.entries_checked} entries: the chain breaks at entry #${report.first_bad_seq}.`),
              h("p", {}, report.problem || ""),
              h("a", { href: link("audit", { order: "oldest", cursor: String(Math.max((report.first_bad_seq || 1) - 3, 0)) }) }, `Show the entries around #${report.first_bad_seq}`),
            ),
        losses.length ? h("div", {}, h("h3", {}, "Losses an operator accepted"), h("ul", {}, ...losses)) : null,
      );
    }),
    out,
  );
}

export default async function audit(ctx, params) {
  if (!ctx.operator) return notice("The audit log is for operator tokens (admin on every namespace).");
  return h(
    "div",
    { class: "stack" },
    section("Search", searchForm(ctx, params)),
    section("Entries", results(ctx, params)),
    section("Chain", verify()),
  );
}
