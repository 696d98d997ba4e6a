// Overview: is this node serving (seal, readiness), what needs attention (refresh failures,
// integrity errors, lock-outs and suspended tokens, failing jobs), and the namespaces with their
// key versions and rewrap progress.

import * as api from "../api.js";
import { h, section, table, badge, when, later, code, notice, link } from "../dom.js";

/** The counters worth waking up for, from this node's Prometheus metrics. */
const COUNTERS = [
  ["strongroom_oauth_refresh_failures_total", "OAuth refresh failures"],
  ["strongroom_auth_failures_total", "Failed authentications"],
  ["strongroom_file_integrity_failures_total", "File integrity failures"],
  ["strongroom_webhook_delivery_failures_total", "Webhook delivery failures"],
];

function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, value] = [line.slice(0, line.lastIndexOf(" ")), line.slice(line.lastIndexOf(" ") + 1)];
    const bare = name.replace(/\{.*\}$/, "");
    values.set(bare, (values.get(bare) || 0) + Number(value));
  }
  return values;
}

async function health() {
  const [seal, ready] = await Promise.all([
    api.get("/v1/sys/seal-status"),
    api.get("/v1/sys/ready").then(
      (r) => r.status,
      (err) => `not ready: ${err.message}`,
    ),
  ]);
  const rows = [
    ["Seal", seal.sealed ? badge("sealed", "bad") : badge("unsealed", "good")],
    ["Root key source", seal.key_source],
    ["Readiness", ready === "ready" ? badge("ready", "good") : badge(ready, "bad")],
  ];
  if (seal.cluster_sealed_at) rows.push(["Cluster sealed at", when(seal.cluster_sealed_at)]);
  if (seal.shamir) rows.push(["Unseal shares", `${seal.shamir.progress ?? 0} of ${seal.shamir.threshold ?? "?"}`]);
  return h("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function counters(ctx) {
  const response = await api.call("GET", "/v1/sys/metrics", undefined, { raw: true });
  const values = parseMetrics(await response.text());
  const items = COUNTERS.map(([name, label]) => [label, values.get(name) ?? 0]);
  const cards = items.map(([label, value]) =>
    h("div", { class: `counter${value > 0 ? " warn" : ""}` }, h("span", { class: "value" }, String(value)), h("span", {}, label)),
  );
  const extra = [];
  if (ctx.operator) {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const [integrity, suspended] = await Promise.all([
      api.get(`/v1/sys/audit${api.query({ outcome: "integrity_error", since, limit: 1000 })}`),
      api.get("/v1/sys/tokens/suspended"),
    ]);
    const n = integrity.items.length;
    extra.push(
      h("div", { class: `counter${n > 0 ? " bad" : ""}` }, h("span", { class: "value" }, n === 1000 ? "1000+" : String(n)), h("span", {}, "Integrity errors in the audit log, last 24 h")),
      h(
        "div",
        { class: `counter${suspended.items.length > 0 ? " warn" : ""}` },
        h("span", { class: "value" }, String(suspended.items.length)),
        h("a", { href: link("tokens") }, "Suspended tokens"),
      ),
    );
  }
  return h("div", {}, h("div", { class: "counters" }, ...cards, ...extra), h("p", { class: "muted" }, "Counters are this node's since it started."));
}

async function jobs() {
  const status = await api.get("/v1/sys/jobs");
  return h(
    "div",
    {},
    h("p", { class: "muted" }, "This node: ", code(status.node_id)),
    table(
      [
        ["Job", (j) => j.name],
        ["Held by", (j) => (j.holder ? code(j.holder) : "—")],
        ["State here", (j) => (j.this_node ? badge(j.this_node.state) : "—")],
        ["Last success", (j) => when(j.this_node && j.this_node.last_success_at)],
        ["Failures", (j) => String((j.this_node && j.this_node.failures) || 0)],
        ["Last error", (j) => (j.this_node && j.this_node.last_error ? h("span", { class: "error" }, j.this_node.last_error, " · ", when(j.this_node.last_error_at)) : "—")],
      ],
      status.jobs,
      { label: "Background jobs" },
    ),
  );
}

async function namespaces(ctx) {
  if (!ctx.namespaces.length) return notice("This token covers no namespace.");
  const rows = await Promise.all(
    ctx.namespaces.map(async (name) => {
      if (!ctx.can("admin", name)) return { name };
      try {
        return { name, keys: await api.get(api.ns(name, "/keys")) };
      } catch (err) {
        return { name, error: err.message };
      }
    }),
  );
  return table(
    [
      ["Namespace", (r) => r.name],
      ["Primary key", (r) => (r.keys ? `v${r.keys.primary_version}` : "—")],
      ["Oldest readable", (r) => (r.keys ? `v${r.keys.min_decrypt_version}` : "—")],
      ["Users on older keys", (r) => (r.keys ? rewrap(r.keys) : r.error || "needs admin")],
      ["", (r) => (r.keys ? h("a", { href: link("keys", { namespace: r.name }) }, "Keys") : "")],
    ],
    rows,
    { label: "Namespaces" },
  );
}

function rewrap(keys) {
  const left = keys.users_on_old_versions;
  return left === 0 ? badge("all on the primary", "good") : badge(`${left} to rewrap`, "warn");
}

export default async function overview(ctx) {
  const parts = [section("This node", later(health)), section("Needs attention", later(() => counters(ctx)))];
  if (ctx.operator) parts.push(section("Background jobs", later(jobs)));
  parts.push(section("Namespaces", later(() => namespaces(ctx))));
  return h("div", { class: "stack" }, ...parts);
}
