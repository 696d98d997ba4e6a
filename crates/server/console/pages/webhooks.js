// Webhooks (admin in the namespace): subscriptions (the signing secret shown once when made),
// a test event, each subscription's deliveries by state, and redelivery.

import * as api from "../api.js";
import { h, section, table, badge, when, code, form, field, input, select, button, confirm, toast, fill, notice, later, secretOnce, link } from "../dom.js";

const STATES = ["", "pending", "delivered", "dead"];

function editor(ctx, existing, shown) {
  const name = input({ name: "name", required: true, value: existing ? existing.name : "", readonly: Boolean(existing) });
  const url = input({ name: "url", type: "url", required: true, value: existing ? existing.url : "", placeholder: "where the app listens" });
  const events = input({ name: "events", required: true, value: existing ? existing.events.join(", ") : "*", placeholder: "credential.refresh_failed, user.erased (or *)" });
  const enabled = h("input", { type: "checkbox", checked: existing ? existing.enabled : true });
  const userId = h("input", { type: "checkbox", checked: existing ? existing.include_user_id : false });
  return form({ class: "grid", "aria-label": existing ? `Edit webhook ${existing.name}` : "Add a webhook" }, [
    field("Name", name),
    field("URL", url),
    field("Events", events),
    field("Enabled", enabled),
    field("Include the app's user id", userId),
    h("div", { class: "actions" }, h("button", { type: "submit" }, existing ? "Save webhook" : "Add webhook")),
  ], async () => {
    const made = await api.put(api.ns(ctx.namespace, `/webhooks/${api.seg(name.value.trim())}`), {
      url: url.value.trim(),
      events: events.value.split(",").map((e) => e.trim()).filter(Boolean),
      enabled: enabled.checked,
      include_user_id: userId.checked,
    });
    toast(`Saved webhook ${made.name}`);
    if (made.secret) fill(shown, secretOnce(`Signing secret of ${made.name}`, made.secret));
    else ctx.refresh();
  });
}

function deliveries(ctx, hook, state) {
  const box = h("div", {});
  const path = (rest) => api.ns(ctx.namespace, `/webhooks/${api.seg(hook)}/deliveries${rest}`);
  const filter = select(STATES.map((s) => ({ value: s, label: s || "any state" })), { name: "state" });
  filter.value = state || "";
  filter.addEventListener("change", () => ctx.go("webhooks", { hook, state: filter.value }));
  const load = async (cursor) => {
    const page = await api.get(path(api.query({ state, cursor, limit: 50 })));
    fill(
      box,
      table(
        [
          ["#", (d) => String(d.seq)],
          ["Event", (d) => code(d.type)],
          ["Event id", (d) => code(d.event_id)],
          ["State", (d) => badge(d.state)],
          ["Attempts", (d) => String(d.attempts)],
          ["Last answer", (d) => (d.last_error ? h("span", { class: "error" }, d.last_error) : d.last_status ? String(d.last_status) : "—")],
          ["Next attempt", (d) => (d.state === "pending" ? when(d.next_attempt_at) : "—")],
          ["", (d) =>
            button("Redeliver", async () => {
              await api.post(path(`/${d.seq}/redeliver`));
              toast(`Delivery #${d.seq} queued again`);
              load(cursor);
            }, { "aria-label": `Redeliver #${d.seq}` })],
        ],
        page.items,
        { empty: "No deliveries.", label: `Deliveries of ${hook}` },
      ),
      page.next_cursor ? button("More", () => load(page.next_cursor)) : null,
    );
  };
  load("").catch((err) => fill(box, notice(`${err.message} (${err.code})`, "error")));
  return h("div", {}, field("Show", filter), box);
}

async function subscriptions(ctx, shown, edit) {
  const items = (await api.get(api.ns(ctx.namespace, "/webhooks"))).items;
  return table(
    [
      ["Name", (w) => h("a", { href: link("webhooks", { hook: w.name }) }, w.name)],
      ["URL", (w) => w.url],
      ["Events", (w) => w.events.join(", ")],
      ["Enabled", (w) => (w.enabled ? badge("enabled", "good") : badge("disabled", "warn"))],
      ["User id", (w) => (w.include_user_id ? "included" : "not sent")],
      ["", (w) =>
        h(
          "div",
          { class: "row" },
          button("Send test", async () => {
            const sent = await api.post(api.ns(ctx.namespace, `/webhooks/${api.seg(w.name)}/test`));
            toast(`Test event ${sent.event_id} queued`);
          }, { "aria-label": `Send a test event to ${w.name}` }),
          button("Edit", () => fill(edit, editor(ctx, w, shown)), { "aria-label": `Edit ${w.name}` }),
          button("Delete…", async () => {
            if (!(await confirm(`Delete webhook ${w.name}? Its queued deliveries are dropped.`, { action: "Delete", danger: true }))) return;
            await api.del(api.ns(ctx.namespace, `/webhooks/${api.seg(w.name)}`));
            toast(`Deleted ${w.name}`);
            ctx.go("webhooks");
            ctx.refresh();
          }, { class: "danger", "aria-label": `Delete ${w.name}` }),
        )],
    ],
    items,
    { empty: "No webhooks yet.", label: "Webhooks" },
  );
}

export default async function webhooks(ctx, params) {
  if (!ctx.can("admin")) return notice("Webhooks need admin in this namespace.");
  const shown = h("div", { "aria-live": "polite" });
  const edit = h("div", {});
  const hook = params.get("hook");
  const parts = [
    section("Subscriptions", later(() => subscriptions(ctx, shown, edit)), h("div", { class: "row" }, button("Add a webhook", () => fill(edit, editor(ctx, null, shown)))), edit, shown),
  ];
  if (hook) parts.push(section(`Deliveries of ${hook}`, deliveries(ctx, hook, params.get("state") || "")));
  return h("div", { class: "stack" }, ...parts);
}
