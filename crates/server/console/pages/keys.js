// Keys: the namespace's key versions as they stand (primary, oldest still readable, users still
// on older versions), and the three moves — rotate (a new primary), rewrap (move users onto it;
// the background job does it too), retire (refuse versions below one) — each confirmed, the
// last one by typing, since data still under a retired version can no longer be read.

import * as api from "../api.js";
import { h, section, table, badge, when, later, notice, button, confirm, toast, fill, form, field, input } from "../dom.js";

function state(keys) {
  const left = keys.users_on_old_versions;
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Primary version"),
    h("dd", { "data-testid": "primary-version" }, `v${keys.primary_version}`),
    h("dt", {}, "Oldest readable version"),
    h("dd", {}, `v${keys.min_decrypt_version}`),
    h("dt", {}, "Users on older versions"),
    h("dd", {}, left === 0 ? badge("none: every user is on the primary", "good") : badge(`${left} still to rewrap`, "warn")),
  );
}

async function rotation(ctx) {
  const current = (await api.get(api.ns(ctx.namespace, "/keys/rotation-policy"))).rotation;
  const days = input({ type: "number", min: "1", required: true, value: current ? String(Math.round(current.rotate_every_secs / 86400)) : "90" });
  const retire = h("input", { type: "checkbox", checked: current ? current.retire_old_versions : true });
  return h(
    "div",
    {},
    h("p", {}, current ? `Rotates every ${Math.round(current.rotate_every_secs / 86400)} day(s)${current.retire_old_versions ? ", retiring older versions once nothing depends on them" : ""}.` : "No scheduled rotation."),
    form({ class: "inline", "aria-label": "Rotation schedule" }, [
      field("Rotate every (days)", days),
      field("Retire old versions when unused", retire),
      h("button", { type: "submit" }, "Save schedule"),
    ], async () => {
      await api.put(api.ns(ctx.namespace, "/keys/rotation-policy"), { rotate_every_secs: Number(days.value) * 86400, retire_old_versions: retire.checked });
      toast("Rotation schedule saved");
      ctx.refresh();
    }),
    current
      ? button("Stop scheduled rotation", async () => {
          await api.del(api.ns(ctx.namespace, "/keys/rotation-policy"));
          toast("Scheduled rotation stopped");
          ctx.refresh();
        })
      : null,
  );
}

export default async function keys(ctx) {
  if (!ctx.can("admin")) return notice("Keys need admin in this namespace.");
  const path = (rest = "") => api.ns(ctx.namespace, `/keys${rest}`);
  const status = await api.get(path());
  const result = h("div", { "aria-live": "polite" });
  const rotate = button("Rotate…", async () => {
    const sure = await confirm(`Make v${status.primary_version + 1} the primary key of ${ctx.namespace}? New data is written under it; users move onto it as they are rewrapped.`, { action: "Rotate" });
    if (!sure) return;
    const after = await api.post(path("/rotate"));
    toast(`Rotated: v${after.primary_version} is the primary`);
    ctx.refresh();
  });
  const rewrap = button("Rewrap now", async () => {
    let total = 0;
    for (;;) {
      const step = await api.post(path("/rewrap"));
      total += step.rewrapped;
      fill(result, `Rewrapped ${total} user key(s); ${step.remaining} left.`);
      if (step.remaining === 0) break;
    }
    toast(`Rewrap finished: ${total} user key(s) moved`);
    ctx.refresh();
  });
  const retirable = status.versions.filter((v) => v.version > status.min_decrypt_version && v.version <= status.primary_version);
  const retire = retirable.length
    ? button("Retire older versions…", async () => {
        const target = status.primary_version;
        const warning = status.users_on_old_versions > 0 ? ` ${status.users_on_old_versions} user(s) are still on older versions: rewrap first.` : "";
        const sure = await confirm(`Refuse every key version below v${target} in ${ctx.namespace}? Anything still under them can no longer be read.${warning}`, { typed: `retire v${status.min_decrypt_version}-v${target - 1}`, action: "Retire", danger: true });
        if (!sure) return;
        await api.post(path("/min-version"), { version: target });
        toast(`Versions below v${target} retired`);
        ctx.refresh();
      }, { class: "danger" })
    : null;
  return h(
    "div",
    { class: "stack" },
    section("Current state", state(status), h("div", { class: "row" }, rotate, rewrap, retire), result),
    section(
      "Versions",
      table(
        [
          ["Version", (v) => `v${v.version}`],
          ["Created", (v) => when(v.created_at)],
          ["Role", (v) => (v.version === status.primary_version ? badge("primary", "good") : v.version < status.min_decrypt_version ? badge("retired", "bad") : badge("readable"))],
        ],
        status.versions.slice().reverse(),
        { label: "Key versions" },
      ),
    ),
    section("Scheduled rotation", later(() => rotation(ctx))),
  );
}
