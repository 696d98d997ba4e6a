// Users: look a user up by the app's own id (the server hashes it, as the API always does) and
// see what is held about them — credentials with their OAuth status, records, recent events,
// files (download, signed link) — then export it all, or erase it behind a typed confirmation
// and watch the purge finish.

import * as api from "../api.js";
import { h, section, table, badge, when, later, code, pre, notice, form, field, input, button, confirm, download, fill, toast, link } from "../dom.js";
import { credentialActions } from "./oauth.js";

function lookupForm(ctx, current) {
  const id = input({ name: "user", required: true, value: current || "", placeholder: "e.g. telegram:123456789" });
  return form({ class: "inline", role: "search", "aria-label": "Look up a user" }, [field("User id", id, "The id your app uses for this user."), h("button", { type: "submit" }, "Look up")], async () => {
    ctx.go("users", { user: id.value.trim() });
  });
}

async function userList(ctx) {
  if (!ctx.can("list")) return notice("Listing users needs the list capability.");
  const page = await api.get(api.ns(ctx.namespace, `/users${api.query({ limit: 50 })}`));
  return h(
    "div",
    {},
    table(
      [
        ["User", (u) => h("a", { href: link("users", { user: u.user }) }, u.user)],
        ["First seen", (u) => when(u.created_at)],
      ],
      page.items,
      { empty: "No users yet.", label: "Users" },
    ),
    page.next_cursor ? h("p", { class: "muted" }, "Showing the first 50; look a user up by id for the rest.") : null,
  );
}

async function credentials(ctx, userId) {
  const path = api.user(ctx.namespace, userId, "/credentials");
  const [list, statuses] = await Promise.all([
    api.all(path),
    ctx.can("list") ? api.get(api.ns(ctx.namespace, "/credential-status")).then((r) => r.items, () => []) : [],
  ]);
  const status = (name) => statuses.find((s) => s.user === userId && s.name === name);
  return table(
    [
      ["Name", (c) => code(c.name)],
      ["Version", (c) => String(c.current_version)],
      ["Updated", (c) => when(c.updated_at)],
      ["Status", (c) => {
        const s = status(c.name);
        return s ? h("span", {}, badge(s.status), s.error ? h("span", { class: "muted" }, ` ${s.error}`) : null) : "—";
      }],
      ["", (c) => credentialActions(ctx, userId, c.name, () => ctx.refresh())],
    ],
    list,
    { empty: "No credentials.", label: "Credentials" },
  );
}

async function records(ctx, userId) {
  const collections = (await api.get(api.ns(ctx.namespace, "/collections"))).items.filter((c) => c.scope === "user");
  if (!collections.length) return h("p", { class: "muted" }, "No per-user collections in this namespace.");
  const parts = await Promise.all(
    collections.map(async (c) => {
      const items = await api.all(api.user(ctx.namespace, userId, `/records/${api.seg(c.name)}`), 200);
      return h(
        "div",
        {},
        h("h3", {}, c.name),
        table(
          [
            ["Key", (r) => code(r.key)],
            ["Version", (r) => String(r.version)],
            ["Updated", (r) => when(r.updated_at)],
            ["Document", (r) => h("details", {}, h("summary", {}, "Show"), pre(r.document))],
          ],
          items,
          { empty: "No records.", label: `Records in ${c.name}` },
        ),
      );
    }),
  );
  return h("div", {}, ...parts);
}

async function events(ctx, userId) {
  const page = await api.get(api.user(ctx.namespace, userId, `/events${api.query({ limit: 20 })}`));
  return table(
    [
      ["Time", (e) => when(e.time)],
      ["Type", (e) => code(e.type)],
      ["Details", (e) => (e.details === undefined || e.details === null ? "—" : h("details", {}, h("summary", {}, "Show"), pre(e.details)))],
    ],
    page.items,
    { empty: "No events.", label: "Recent events" },
  );
}

async function files(ctx, userId) {
  const items = await api.all(api.user(ctx.namespace, userId, "/files"), 500);
  const linkBox = h("div", { class: "links", "aria-live": "polite" });
  const filePath = (f, rest = "") => api.user(ctx.namespace, userId, `/files/${api.seg(f.id)}${rest}`);
  return h(
    "div",
    {},
    table(
      [
        ["Name", (f) => f.name],
        ["Type", (f) => f.content_type],
        ["Size", (f) => `${f.size} B`],
        ["Stored", (f) => when(f.created_at)],
        ["", (f) =>
          h(
            "div",
            { class: "row" },
            ctx.can("read")
              ? button(`Download`, async () => {
                  const response = await api.call("GET", filePath(f, "/content"), undefined, { raw: true });
                  download(f.name, await response.blob());
                }, { "aria-label": `Download ${f.name}` })
              : null,
            ctx.can("read")
              ? button("Signed link", async () => {
                  const made = await api.post(filePath(f, "/links"), { expires_in_secs: 900 });
                  const url = `${location.origin}${made.path}`;
                  fill(linkBox, h("p", {}, `Link to ${f.name}, valid until `, when(made.expires_at), ":"), h("div", { class: "row" }, input({ value: url, readonly: true, "aria-label": "Signed link", class: "secret" }), button("Copy", async () => {
                    await navigator.clipboard.writeText(url);
                    toast("Copied");
                  })));
                }, { "aria-label": `Signed link for ${f.name}` })
              : null,
          )],
      ],
      items,
      { empty: "No files.", label: "Files" },
    ),
    linkBox,
  );
}

function exportButtons(ctx, userId) {
  if (!ctx.can("export")) return notice("Exporting needs the export capability.");
  const safe = userId.replace(/[^A-Za-z0-9._-]+/g, "_");
  return h(
    "div",
    { class: "row" },
    button("Export as JSON", async () => {
      const response = await api.call("GET", api.user(ctx.namespace, userId, "/export"), undefined, { raw: true });
      download(`strongroom-export-${ctx.namespace}-${safe}.json`, await response.blob());
      toast("Export downloaded");
    }),
    button("Export with files (tar)", async () => {
      const response = await api.call("GET", api.user(ctx.namespace, userId, "/export/archive"), undefined, { raw: true });
      download(`strongroom-export-${ctx.namespace}-${safe}.tar`, await response.blob());
      toast("Archive downloaded");
    }),
  );
}

/** The erasure and, once started, its progress until nothing of the user is left. */
function erasure(ctx, userId) {
  if (!ctx.can("erase")) return notice("Erasing needs the erase capability.");
  const progress = h("div", { class: "progress", "aria-live": "polite" });
  const watch = async () => {
    const initial = await api.get(api.user(ctx.namespace, userId, "/erasure"));
    const total = Math.max(initial.items_remaining, 1);
    const bar = h("progress", { max: String(total), value: "0", "aria-label": "Erasure progress" });
    const text = h("span", {});
    fill(progress, bar, " ", text);
    for (;;) {
      const s = await api.get(api.user(ctx.namespace, userId, "/erasure"));
      bar.value = total - Math.min(s.items_remaining, total);
      if (!s.purge_pending && s.items_remaining === 0) {
        bar.value = total;
        fill(text, badge("erased", "good"), " Nothing of this user is left.");
        return;
      }
      fill(text, `${s.items_remaining} item(s) left to purge…`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  };
  return h(
    "div",
    {},
    h("p", {}, "Erasing deletes every credential, record, event and file of this user, revokes their OAuth grants, and cannot be undone."),
    button(
      "Erase this user…",
      async () => {
        const sure = await confirm(`Erase everything held about ${userId} in ${ctx.namespace}?`, { typed: userId, action: "Erase", danger: true });
        if (!sure) return;
        const result = await api.del(api.user(ctx.namespace, userId, api.query({ confirm: userId })));
        toast(`Erasure started${result && result.ledger ? ` (ledger: ${result.ledger})` : ""}`);
        await watch();
      },
      { class: "danger" },
    ),
    progress,
  );
}

export default async function users(ctx, params) {
  const userId = params.get("user");
  const parts = [section("Look up", lookupForm(ctx, userId))];
  if (!userId) {
    parts.push(section("Users", later(() => userList(ctx))));
    return h("div", { class: "stack" }, ...parts);
  }
  parts.push(
    h("h2", { class: "subject" }, "User ", code(userId)),
    section("Credentials", later(() => credentials(ctx, userId))),
    section("Records", later(() => records(ctx, userId))),
    section("Recent events", later(() => events(ctx, userId))),
    section("Files", later(() => files(ctx, userId))),
    section("Export", exportButtons(ctx, userId)),
    section("Erase", erasure(ctx, userId)),
  );
  return h("div", { class: "stack" }, ...parts);
}
