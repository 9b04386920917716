// The overview page (`#/`): everything received (counts), the devices with their latest values (filters, pages,
// those the API withholds counted per zone, never listed) and the quarantine. A device's name leads to its page.

import { api, refused } from "./api.js";
import { el } from "./dom.js";
import { ago, bytes, integer, localTime, shortKey, withUnit } from "./format.js";
import { t } from "./i18n.js";
import { href } from "./router.js";
import { quantityName } from "./usechart.js";

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const state = { devices: [], page: 0, zoneLabels: null };

export function forget() {
  state.zoneLabels = null;
}

// counts -------------------------------------------------------------------------------------------------------
export async function refreshCounts() {
  const c = await api.counts();
  for (const dd of document.querySelectorAll("[data-count]")) {
    const n = c[dd.dataset.count] ?? 0;
    dd.textContent = integer(n);
    dd.parentElement.classList.toggle("nonzero", n > 0);
  }
}

// devices ------------------------------------------------------------------------------------------------------
// Replace a select's options, keeping its first one ("all") when asked, and its value when still offered.
function fillSelect(select, values, labels = {}, keepFirst = true) {
  const current = select.value;
  const first = keepFirst ? [select.options[0]] : [];
  select.replaceChildren(...first, ...values.map((v) => el("option", { value: v, textContent: labels[v] ?? v })));
  select.value = values.includes(current) ? current : (keepFirst ? "" : values[0] ?? "");
}

function filtered() {
  const q = $("f-q").value.trim().toLowerCase();
  if (!q) return state.devices;
  return state.devices.filter((d) => d.eui.includes(q) || (d.name || "").toLowerCase().includes(q));
}

function valuesCell(latest) {
  if (!latest || latest.length === 0) return el("span", { class: "muted", textContent: t("devices.no_values") });
  return el("div", { class: "vals" }, ...latest.map((v) =>
    el("span", { class: "val", title: t("devices.value_title", { quantity: quantityName(v.quantity),
                                                                  time: localTime(v.time) }) },
      el("span", { class: "k", textContent: shortKey(v.quantity) }), withUnit(v.value, v.unit))));
}

export const kindName = (kind) => (kind ? (t(`kind.${kind}`) === `kind.${kind}` ? kind : t(`kind.${kind}`)) : "");

function deviceRow(d, latest) {
  const seen = el("time", { dateTime: d.last_seen || "", title: localTime(d.last_seen),
                            textContent: ago(d.last_seen) });
  const stale = d.expected_interval_s && d.last_seen
    && Date.now() - Date.parse(d.last_seen) > 3 * d.expected_interval_s * 1000;
  return el("tr", { dataset: { eui: d.eui } },
    el("td", {}, el("a", { href: href.device(d.eui), class: "name-link", textContent: d.name || d.eui,
                           title: t("devices.open_page") })),
    el("td", { class: "eui", textContent: d.eui }),
    el("td", { textContent: kindName(d.kind) }),
    el("td", { textContent: d.zone || "" }),
    el("td", {}, valuesCell(latest)),
    el("td", { class: stale ? "stale" : "" }, seen));
}

async function renderDevices() {
  const list = filtered();
  const pages = Math.max(1, Math.ceil(list.length / PAGE));
  state.page = Math.min(state.page, pages - 1);
  const visible = list.slice(state.page * PAGE, (state.page + 1) * PAGE);
  const latest = visible.length ? (await api.latest(visible.map((d) => d.eui))).latest : {};
  const rows = visible.map((d) => deviceRow(d, latest[d.eui]));
  $("dev-rows").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 6, class: "muted", textContent: t("devices.none") }))]));
  $("dev-count").textContent = t("devices.count", { n: integer(list.length), total: integer(state.devices.length) });
  $("page").textContent = t("devices.page", { page: state.page + 1, pages });
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
}

// "Not listed: 3 devices whose data is personal (water_meter in ecusson: 3)…"
function renderWithheld(withheld) {
  const total = withheld.reduce((n, w) => n + w.devices, 0);
  const byClass = {};
  for (const w of withheld) {
    (byClass[w.class] ??= []).push(t("devices.withheld_part", { kind: kindName(w.kind) || t("devices.a_device"),
                                                                zone: w.zone || t("devices.no_zone"), n: w.devices }));
  }
  $("dev-withheld").textContent = total === 0 ? "" : t(total > 1 ? "devices.withheld_many" : "devices.withheld_one",
    { n: total, what: Object.entries(byClass).map(([c, parts]) =>
      t("devices.withheld_class", { class: t(`class.${c}`), parts: parts.join(", ") })).join("; ") })
    + (byClass.personal ? ` ${t("devices.withheld_personal")}` : "");
}

// the zones' names, asked once (again when the key changes) and alongside the devices, not after them
function zoneLabels() {
  state.zoneLabels ??= api.zones().then((r) => Object.fromEntries(r.zones.map((z) => [z.id, z.name || z.id])))
    .catch(() => ({})); // zones are optional
  return state.zoneLabels;
}

export async function refreshDevices() {
  const everything = !$("f-kind").value && !$("f-zone").value;
  const [{ devices, withheld }, labels] = await Promise.all([api.devices($("f-kind").value, $("f-zone").value),
    everything ? zoneLabels() : null]);
  state.devices = devices;
  renderWithheld(withheld ?? []);
  if (everything) {
    // filter choices come from the whole list, zone names from the zones table when there is one
    const kinds = [...new Set(devices.map((d) => d.kind).filter(Boolean))].sort();
    fillSelect($("f-kind"), kinds, Object.fromEntries(kinds.map((k) => [k, kindName(k)])));
    const zoneIds = new Set(devices.map((d) => d.zone).filter(Boolean));
    for (const id of Object.keys(labels)) zoneIds.add(id);
    fillSelect($("f-zone"), [...zoneIds].sort(), labels);
  }
  await renderDevices();
}

// quarantine ---------------------------------------------------------------------------------------------------
function quarantineNote(text) {
  $("q-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 5, class: "muted", textContent: text })));
}

export async function refreshQuarantine() {
  let uplinks;
  try {
    ({ uplinks } = await api.quarantine());
  } catch (e) {
    if (!refused(e)) throw e;
    quarantineNote(t("quarantine.refused", { message: e.message }));
    return;
  }
  const rows = uplinks.map((u) => el("tr", {},
    el("td", {}, el("time", { dateTime: u.received_at, textContent: localTime(u.received_at) })),
    el("td", { class: "mono", textContent: u.dev_eui || t("quarantine.unknown") }),
    el("td", { textContent: `${u.source} · ${u.event} · ${u.fmt}` }),
    el("td", { class: "err", textContent: u.error || "" }),
    el("td", { textContent: bytes(u.raw_size) })));
  $("q-rows").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 5, class: "muted", textContent: t("quarantine.none") }))]));
}

export function wireOverview(onError) {
  const reload = () => { state.page = 0; refreshDevices().catch(onError); };
  $("f-kind").addEventListener("change", reload);
  $("f-zone").addEventListener("change", reload);
  $("f-q").addEventListener("input", () => { state.page = 0; renderDevices(); });
  $("prev").addEventListener("click", () => { state.page -= 1; renderDevices(); });
  $("next").addEventListener("click", () => { state.page += 1; renderDevices(); });
}

// the overview's three reads, run together by main.js's loop
export const refreshOverview = () => [refreshCounts(), refreshDevices(), refreshQuarantine()];
