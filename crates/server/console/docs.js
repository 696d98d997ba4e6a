// The API reference at /docs: renders the server's own OpenAPI document (/v1/openapi.json) —
// operations grouped by area, their parameters, bodies and answers — with "try it" forms that
// call this server with the console's token (the same session storage; or one typed here).
// A small renderer of our own rather than a vendored one: a few hundred lines that need no
// inline script or style, so the strict Content-Security-Policy holds on this page too.

import * as api from "./api.js";
import { h, fill, field, input, pre, code, button, describe, uid } from "./dom.js";

const METHODS = ["get", "put", "post", "delete", "head", "patch"];

function resolve(doc, schema, depth = 0) {
  if (!schema || depth > 6) return schema;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve(doc, doc.components.schemas[name], depth + 1);
  }
  return schema;
}

/** A sample body from a schema (its example, else a skeleton of its required fields). */
function sample(doc, schema, depth = 0) {
  const s = resolve(doc, schema);
  if (!s || depth > 4) return null;
  if (s.example !== undefined) return s.example;
  if (s.examples && s.examples.length) return s.examples[0];
  if (s.default !== undefined) return s.default;
  if (s.enum) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  if (s.oneOf || s.anyOf) return sample(doc, (s.oneOf || s.anyOf)[0], depth + 1);
  switch (type) {
    case "object": {
      const out = {};
      const required = s.required || Object.keys(s.properties || {});
      for (const key of required) {
        if (s.properties && s.properties[key]) out[key] = sample(doc, s.properties[key], depth + 1);
      }
      return out;
    }
    case "array":
      return [sample(doc, s.items, depth + 1)].filter((v) => v !== null);
    case "integer":
    case "number":
      return s.minimum !== undefined ? s.minimum : 0;
    case "boolean":
      return false;
    case "string":
      return "";
    default:
      return null;
  }
}

/** A schema as readable text: properties, types and descriptions, references resolved. */
function describeSchema(doc, schema, depth = 0, seen = new Set()) {
  if (!schema) return "";
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    if (seen.has(name) || depth > 3) return name;
    return describeSchema(doc, doc.components.schemas[name], depth, new Set([...seen, name]));
  }
  const pad = "  ".repeat(depth);
  const type = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || (schema.oneOf ? "one of" : schema.anyOf ? "any of" : "");
  if (schema.properties) {
    const required = new Set(schema.required || []);
    const lines = Object.entries(schema.properties).map(([key, value]) => {
      const inner = describeSchema(doc, value, depth + 1, seen);
      const note = value.description ? `  — ${value.description}` : "";
      return `${pad}  ${key}${required.has(key) ? "" : "?"}: ${inner.trimStart()}${note}`;
    });
    return `{\n${lines.join("\n")}\n${pad}}`;
  }
  if (schema.items) return `array of ${describeSchema(doc, schema.items, depth, seen).trimStart()}`;
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map((s) => describeSchema(doc, s, depth, seen)).join(" | ");
  return type || "any";
}

function group(path) {
  const parts = path.split("/").filter(Boolean);
  if (parts[1] === "sys") return "System";
  if (parts[1] === "links") return "Files";
  const area = parts[1] === "ns" ? parts.find((p, i) => i > 2 && !p.startsWith("{")) : parts[1];
  const names = { users: "Users", credentials: "Credentials", "credential-status": "OAuth", providers: "OAuth", keys: "Keys", webhooks: "Webhooks", events: "Events", collections: "Records", records: "Records", "file-policy": "Files", "security-policy": "Security" };
  if (parts[3] === "users" && parts.length > 5) return names[parts[5]] || "Users";
  return names[area] || "Other";
}

function tryIt(doc, method, path, op) {
  const params = (op.parameters || []).map((p) => ({ ...p, control: input({ name: p.name, placeholder: p.required ? "required" : "optional" }) }));
  const bodySchema = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  const body = bodySchema ? h("textarea", { rows: "6", spellcheck: "false" }) : null;
  if (body) body.value = JSON.stringify(sample(doc, bodySchema.schema), null, 2);
  const out = h("div", { "aria-live": "polite" });
  const send = button("Send", async () => {
    let url = path;
    const search = {};
    for (const p of params) {
      const value = p.control.value;
      if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (p.in === "query") search[p.name] = value;
    }
    url += api.query(search);
    const headers = {};
    const secret = api.token.get();
    if (secret) headers.Authorization = `Bearer ${secret}`;
    const init = { method: method.toUpperCase(), headers, credentials: "omit", cache: "no-store", redirect: "manual" };
    if (body && body.value.trim()) {
      headers["Content-Type"] = "application/json";
      init.body = body.value;
    }
    const started = performance.now();
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        /* not JSON: shown as it came */
      }
      fill(out, h("p", {}, code(`${init.method} ${url}`), ` → ${response.status} ${response.statusText} in ${Math.round(performance.now() - started)} ms`), pre(shown));
    } catch (err) {
      fill(out, h("p", { class: "error" }, describe(err)));
    }
  });
  return h(
    "div",
    { class: "try" },
    h("h4", {}, "Try it"),
    ...params.filter((p) => p.in === "path" || p.in === "query").map((p) => field(`${p.name} (${p.in})`, p.control, p.description)),
    body ? field("Body (JSON)", body) : null,
    send,
    out,
  );
}

function operation(doc, method, path, op) {
  const id = uid("op");
  const params = op.parameters || [];
  const responses = Object.entries(op.responses || {});
  const bodySchema = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  return h(
    "details",
    { class: "op", id },
    h("summary", {}, h("span", { class: `method ${method}` }, method.toUpperCase()), " ", code(path), " ", h("span", { class: "muted" }, op.summary || "")),
    op.description ? h("p", {}, op.description) : null,
    params.length
      ? h(
          "div",
          {},
          h("h4", {}, "Parameters"),
          h("ul", {}, ...params.map((p) => h("li", {}, code(p.name), ` (${p.in}${p.required ? ", required" : ""}) `, p.description || ""))),
        )
      : null,
    bodySchema ? h("div", {}, h("h4", {}, "Body"), pre(describeSchema(doc, bodySchema.schema))) : null,
    h("h4", {}, "Answers"),
    h("ul", {}, ...responses.map(([status, r]) => h("li", {}, code(status), " ", r.description || ""))),
    tryIt(doc, method, path, op),
  );
}

async function render() {
  const doc = await api.get("/v1/openapi.json");
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const name = group(path);
      if (!groups.has(name)) groups.set(name, []);
      groups.get(name).push([method, path, { ...item[method], parameters: [...(item.parameters || []), ...(item[method].parameters || [])] }]);
    }
  }
  const body = document.getElementById("docs-body");
  const index = document.getElementById("docs-index");
  const sections = [];
  const links = [];
  for (const [name, ops] of groups) {
    const sectionId = `area-${name.toLowerCase()}`;
    links.push(h("li", {}, h("a", { href: `#${sectionId}` }, `${name} (${ops.length})`)));
    sections.push(h("section", { class: "card", id: sectionId }, h("h2", {}, name), ...ops.map(([m, p, op]) => operation(doc, m, p, op))));
  }
  fill(index, h("ul", {}, ...links));
  fill(body, h("h1", {}, doc.info.title, h("span", { class: "muted" }, ` ${doc.info.version}`)), h("p", {}, doc.info.description || ""), ...sections);
}

function tokenBox() {
  const formEl = document.getElementById("docs-token");
  const state = document.getElementById("docs-token-state");
  const show = () => fill(state, api.token.get() ? "a token is set for this tab" : "no token: calls go unauthenticated");
  formEl.addEventListener("submit", (event) => {
    event.preventDefault();
    const box = document.getElementById("docs-token-input");
    if (box.value.trim()) api.token.set(box.value.trim());
    box.value = "";
    show();
  });
  show();
}

tokenBox();
render().catch((err) => fill(document.getElementById("docs-body"), h("p", { class: "error" }, describe(err))));
