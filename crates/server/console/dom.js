// Building pages without markup strings: every value from the API becomes a text node, so
// nothing a user or an app stored can run as script. Also the few widgets every page shares:
// tables, forms, confirmations (typed ones for what cannot be undone), notices, downloads.

/** An element: `h("button", {class: "x", onclick: f}, "text", child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "value") el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

let ids = 0;
/** A page-unique element id. */
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A labelled control: the label names it for screen readers and clicks focus it. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid("f");
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "muted" }, hint));
  }
  return h("div", { class: "field" }, ...parts);
}

export const input = (attrs = {}) => h("input", { type: "text", spellcheck: "false", ...attrs });

export function select(options, attrs = {}) {
  return h(
    "select",
    attrs,
    ...options.map((o) => (typeof o === "string" ? h("option", { value: o }, o || "any") : h("option", { value: o.value }, o.label))),
  );
}

/** A form whose submit runs `onsubmit(form)` (never a browser submission). */
export function form(attrs, children, onsubmit) {
  const el = h("form", { ...attrs, autocomplete: "off" }, ...children);
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = el.querySelector("button[type=submit]");
    run(button, () => onsubmit(el));
  });
  return el;
}

export const button = (label, onclick, attrs = {}) =>
  h("button", { type: "button", ...attrs, onclick: (event) => run(event.currentTarget, onclick) }, label);

/** Runs an action with its button disabled, showing a failure as a notice. */
export async function run(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    toast(describe(err), "error");
  } finally {
    if (button) button.disabled = false;
  }
}

/** An error as the operator should read it: the server's message and its stable code. */
export function describe(err) {
  if (err && err.code) return `${err.message} (${err.code})`;
  return String((err && err.message) || err);
}

export function toast(text, kind = "ok") {
  const box = document.getElementById("toasts");
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 12000 : 5000);
}

export const section = (title, ...children) => h("section", { class: "card" }, h("h2", {}, title), ...children);

export const notice = (text, kind = "info") => h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, text);

/** A page's failure to load, in place of its content. */
export const failure = (err) => notice(describe(err), "error");

/** A table: `columns` are `[label, row => cell]`. */
export function table(columns, rows, { empty = "Nothing here.", label } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, ...columns.map(([name]) => h("th", { scope: "col" }, name)));
  const body = rows.map((row) => h("tr", {}, ...columns.map(([name, cell]) => h("td", { "data-label": name }, cell(row)))));
  return h("div", { class: "table" }, h("table", { "aria-label": label }, h("thead", {}, head), h("tbody", {}, ...body)));
}

export const code = (text) => h("code", {}, text);
export const pre = (value) => h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
export const badge = (text, kind = "") => h("span", { class: `badge ${kind || text}` }, text);

/** A time as the operator's clock shows it (with the UTC original as a tooltip). */
export function when(text) {
  if (!text) return "—";
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return h("time", { datetime: text, title: text }, date.toLocaleString());
}

/**
 * A confirmation dialog. With `typed`, the operator must type that exact text first (for what
 * cannot be undone). Resolves true only on confirmation.
 */
export function confirm(message, { typed, action = "Confirm", danger = false } = {}) {
  return new Promise((resolve) => {
    const typedInput = typed ? input({ autocomplete: "off" }) : null;
    const ok = h("button", { type: "submit", class: danger ? "danger" : "", disabled: Boolean(typed) }, action);
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": action },
      h(
        "form",
        { method: "dialog" },
        h("p", {}, message),
        typed ? field(`Type ${typed} to confirm`, typedInput) : null,
        h("div", { class: "actions" }, cancel, ok),
      ),
    );
    if (typedInput) typedInput.addEventListener("input", () => (ok.disabled = typedInput.value !== typed));
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    dialog.querySelector("form").addEventListener("submit", (event) => {
      event.preventDefault();
      if (!typed || typedInput.value === typed) finish(true);
    });
    document.body.append(dialog);
    dialog.showModal();
    (typedInput || cancel).focus();
  });
}

/** Saves `blob` as a file named `name` (the bytes never leave the browser). */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Text shown once (a new token, a webhook secret), with a copy button. */
export function secretOnce(label, value) {
  const box = input({ value, readonly: true, "aria-label": label, class: "secret" });
  const copy = button("Copy", async () => {
    await navigator.clipboard.writeText(value);
    toast("Copied");
  });
  return h(
    "div",
    { class: "once", role: "group", "aria-label": label },
    h("strong", {}, label),
    h("p", {}, "Shown this once: store it now. Strongroom keeps only its digest."),
    h("div", { class: "row" }, box, copy),
  );
}

/** Replaces `el`'s content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A placeholder that fills itself when `load` resolves (or shows why it could not). */
export function later(load) {
  const el = h("div", { class: "later" }, h("p", { class: "muted" }, "Loading…"));
  Promise.resolve()
    .then(load)
    .then(
      (content) => fill(el, content),
      (err) => fill(el, failure(err)),
    );
  return el;
}

/** The hash of a console page with parameters (`#/users?user=alice`), for links between pages. */
export function link(route, params = {}) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return `#/${route}${text ? `?${text}` : ""}`;
}
