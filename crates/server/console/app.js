// The console's shell: sign-in, the namespace picker, the page list and the router
// (`#/page?key=value`). Pages get a context with the token's policy and render into `#page`;
// what a page offers follows the policy, and the server checks every call anyway.

import * as api from "./api.js";
import { h, fill, failure, describe, link } from "./dom.js";
import overview from "./pages/overview.js";
import users from "./pages/users.js";
import oauth from "./pages/oauth.js";
import keys from "./pages/keys.js";
import tokens from "./pages/tokens.js";
import audit from "./pages/audit.js";
import webhooks from "./pages/webhooks.js";

const NS_KEY = "strongroom.namespace";

/** Every page: its route, title, and who may see it. */
const PAGES = [
  { route: "overview", title: "Overview", page: overview, shown: () => true },
  { route: "users", title: "Users", page: users, shown: (c) => c.inNamespace() },
  { route: "oauth", title: "OAuth", page: oauth, shown: (c) => c.inNamespace() },
  { route: "keys", title: "Keys", page: keys, shown: (c) => c.can("admin") },
  { route: "tokens", title: "Tokens", page: tokens, shown: (c) => c.operator },
  { route: "audit", title: "Audit", page: audit, shown: (c) => c.operator },
  { route: "webhooks", title: "Webhooks", page: webhooks, shown: (c) => c.can("admin") },
];

const $ = (id) => document.getElementById(id);
let context = null;

function parseHash() {
  const [route, search] = location.hash.replace(/^#\/?/, "").split("?");
  return { route: route || "overview", params: new URLSearchParams(search || "") };
}

async function signIn(secret) {
  api.token.set(secret);
  try {
    const self = await api.get("/v1/sys/tokens/self");
    const listed = await api.get("/v1/sys/namespaces").catch(() => ({ items: [] }));
    let namespaces = listed.items.map((n) => n.name);
    if (!self.policy.namespaces.includes("*")) {
      namespaces = self.policy.namespaces.filter((n) => namespaces.length === 0 || namespaces.includes(n));
    }
    start(self, namespaces);
  } catch (err) {
    api.token.clear();
    throw err;
  }
}

function start(self, namespaces) {
  const saved = sessionStorage.getItem(NS_KEY);
  context = {
    tokenId: self.id,
    policy: self.policy,
    operator: api.isOperator(self.policy),
    namespaces,
    namespace: namespaces.includes(saved) ? saved : namespaces[0] || "",
    can(capability, namespace = this.namespace) {
      return Boolean(namespace) && api.can(this.policy, capability, namespace);
    },
    inNamespace() {
      return Boolean(this.namespace);
    },
    go(route, params) {
      location.hash = link(route, params);
    },
    refresh: () => render(),
  };
  $("login").hidden = true;
  $("session").hidden = false;
  $("nav").hidden = false;
  const picker = $("namespace");
  fill(picker, ...namespaces.map((n) => h("option", { value: n }, n)));
  picker.value = context.namespace;
  picker.disabled = namespaces.length === 0;
  const caps = self.policy.capabilities.join(", ");
  const where = self.policy.namespaces.join(", ");
  fill($("whoami"), `token ${self.id} · ${caps} on ${where}`);
  render();
}

function signOut() {
  api.token.clear();
  context = null;
  fill($("page"));
  $("session").hidden = true;
  $("nav").hidden = true;
  $("login").hidden = false;
  $("token").value = "";
  $("token").focus();
  // A sealed node refuses every token: say so before anyone tries one.
  api.get("/v1/sys/seal-status").then(
    (seal) => {
      const error = $("login-error");
      if (seal.sealed) {
        error.hidden = false;
        fill(error, "This node is sealed: unseal it (strongroom unseal) before signing in.");
      }
    },
    () => {},
  );
}

async function render() {
  if (!context) return;
  const { route, params } = parseHash();
  const wanted = params.get("namespace");
  if (wanted && wanted !== context.namespace && context.namespaces.includes(wanted)) {
    context.namespace = wanted;
    sessionStorage.setItem(NS_KEY, wanted);
    $("namespace").value = wanted;
  }
  const visible = PAGES.filter((p) => p.shown(context));
  fill(
    $("nav"),
    ...visible.map((p) =>
      h("a", { href: link(p.route), "aria-current": p.route === route ? "page" : null }, p.title),
    ),
    h("a", { href: "/docs" }, "API reference"),
  );
  const entry = visible.find((p) => p.route === route) || visible[0];
  document.title = `${entry.title} · Strongroom console`;
  const page = $("page");
  fill(page, h("h1", {}, entry.title, context.namespace && entry.route !== "tokens" && entry.route !== "audit" ? h("span", { class: "muted" }, ` · ${context.namespace}`) : null));
  try {
    page.append(await entry.page(context, params));
  } catch (err) {
    if (err && err.status === 401) {
      signOut();
      $("login-error").hidden = false;
      fill($("login-error"), `Signed out: ${describe(err)}`);
      return;
    }
    page.append(failure(err));
  }
}

function boot() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("login-error");
    error.hidden = true;
    const secret = $("token").value.trim();
    try {
      await signIn(secret);
      $("token").value = "";
    } catch (err) {
      error.hidden = false;
      fill(error, describe(err));
    }
  });
  $("logout").addEventListener("click", signOut);
  $("namespace").addEventListener("change", (event) => {
    context.namespace = event.target.value;
    sessionStorage.setItem(NS_KEY, context.namespace);
    render();
  });
  window.addEventListener("hashchange", () => render());
  const saved = api.token.get();
  if (saved) {
    signIn(saved).catch(() => signOut());
  } else {
    signOut();
  }
}

boot();
