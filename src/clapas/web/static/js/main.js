// The dashboard: counts, alerts, devices with their latest values, a device's history, the quarantine.
// Everything is re-read from the API every REFRESH_MS; the DOM is built with textContent (never innerHTML).
// It shows what the caller may see (anonymous: open data): a section the API refuses (401/403) says so and the
// others go on; devices the API withholds are counted per zone, never listed.

import { refreshAlerts, setActions } from "./alerts.js";
import { api, key, refused, setKey } from "./api.js";
import * as chart from "./chart.js";
import { el } from "./dom.js";
import { ago, bytes, localTime, shortKey, withUnit } from "./format.js";

const REFRESH_MS = 5000;
// anonymous callers share their address's rate limit ([charter.roles.public]): half as often
const ANONYMOUS_REFRESH_MS = 10000;
const PAGE = 50;

const $ = (id) => document.getElementById(id);
const state = { devices: [], withheld: [], page: 0, selected: null, quantities: {}, zoneLabels: null, me: null };

function setStatus(text) {
  $("status").textContent = text;
}

// who is calling -------------------------------------------------------------------------------------------------
async function refreshMe() {
  if (state.me) return; // read again only when the key changes
  let me = { via: "anonymous", role: "", scopes: [] };
  try {
    me = await api.me();
  } catch (e) {
    if (!refused(e)) throw e; // a bad key: the API says why
    $("who").textContent = `Key refused: ${e.message}`;
    setActions(false);
    return;
  }
  state.me = me;
  setActions(me.scopes.includes("alerts:write"));
  const what = me.scopes.includes("personal:read") ? "open, restricted and personal data"
    : me.scopes.includes("restricted:read") ? "open and restricted data" : "open data";
  $("who").textContent = me.via === "anonymous" ? `Anonymous: ${what}` : `${me.actor} (${me.role}): ${what}`;
  $("key-clear").hidden = !key();
}

// counts ----------------------------------------------------------------------------------------------
async function refreshCounts() {
  const c = await api.counts();
  for (const dd of document.querySelectorAll("[data-count]")) {
    const n = c[dd.dataset.count] ?? 0;
    dd.textContent = n.toLocaleString();
    dd.parentElement.classList.toggle("nonzero", n > 0);
  }
}

// devices ---------------------------------------------------------------------------------------------
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
  if (!latest || latest.length === 0) return el("span", { class: "muted", textContent: "no values yet" });
  return el("div", { class: "vals" }, ...latest.map((v) =>
    el("span", { class: "val", title: `${v.quantity} at ${localTime(v.time)}` },
      el("span", { class: "k", textContent: shortKey(v.quantity) }), withUnit(v.value, v.unit))));
}

function deviceRow(d, latest) {
  const name = el("button", { type: "button", class: "name-btn", textContent: d.name || d.eui,
                              title: "Show this device's history" });
  name.addEventListener("click", () => selectDevice(d.eui, true));
  const seen = el("time", { dateTime: d.last_seen || "", title: localTime(d.last_seen),
                            textContent: ago(d.last_seen) });
  const stale = d.expected_interval_s && d.last_seen
    && Date.now() - Date.parse(d.last_seen) > 3 * d.expected_interval_s * 1000;
  return el("tr", { class: d.eui === state.selected ? "selected" : "", dataset: { eui: d.eui } },
    el("td", {}, name),
    el("td", { class: "eui", textContent: d.eui }),
    el("td", { textContent: d.kind || "" }),
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
  const focused = document.activeElement?.closest?.("tr")?.dataset?.eui;
  const rows = visible.map((d) => deviceRow(d, latest[d.eui]));
  $("dev-rows").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 6, class: "muted", textContent: "No device matches." }))]));
  if (focused) $("dev-rows").querySelector(`tr[data-eui="${CSS.escape(focused)}"] button`)?.focus();
  $("dev-count").textContent = `${list.length} of ${state.devices.length} devices`;
  $("page").textContent = `page ${state.page + 1} of ${pages}`;
  $("prev").disabled = state.page === 0;
  $("next").disabled = state.page >= pages - 1;
}

// "Not listed: 3 devices whose data is personal (water_meter in ecusson: 3)…"
function renderWithheld(withheld) {
  const total = withheld.reduce((n, w) => n + w.devices, 0);
  const byClass = {};
  for (const w of withheld) {
    (byClass[w.class] ??= []).push(`${w.kind || "device"} in ${w.zone || "no zone"}: ${w.devices}`);
  }
  $("dev-withheld").textContent = total === 0 ? "" : `Not listed: ${total} device${total > 1 ? "s" : ""} whose `
    + Object.entries(byClass).map(([c, parts]) => `data is ${c} (${parts.join(", ")})`).join("; ")
    + (byClass.personal ? ". Personal data is published only as district aggregates." : ".");
}

async function refreshDevices() {
  const { devices, withheld } = await api.devices($("f-kind").value, $("f-zone").value);
  state.devices = devices;
  state.withheld = withheld ?? [];
  renderWithheld(state.withheld);
  if (!$("f-kind").value && !$("f-zone").value) {
    // filter choices come from the whole list, zone names from the zones table when there is one
    fillSelect($("f-kind"), [...new Set(devices.map((d) => d.kind).filter(Boolean))].sort());
    const zoneIds = new Set(devices.map((d) => d.zone).filter(Boolean));
    if (!state.zoneLabels) {
      state.zoneLabels = {};
      try {
        for (const z of (await api.zones()).zones) state.zoneLabels[z.id] = z.name || z.id;
      } catch { /* zones are optional */ }
    }
    for (const id of Object.keys(state.zoneLabels)) zoneIds.add(id);
    fillSelect($("f-zone"), [...zoneIds].sort(), state.zoneLabels);
  }
  fillSelect($("h-eui"), devices.map((d) => d.eui),
    Object.fromEntries(devices.map((d) => [d.eui, d.name ? `${d.name} (${d.eui})` : d.eui])), false);
  if (!state.selected && devices.length) await selectDevice(devices[0].eui, false);
  else $("h-eui").value = state.selected ?? "";
  await renderDevices();
}

// history ---------------------------------------------------------------------------------------------
async function selectDevice(eui, scroll) {
  state.selected = eui;
  $("h-eui").value = eui;
  for (const tr of $("dev-rows").querySelectorAll("tr[data-eui]")) {
    tr.classList.toggle("selected", tr.dataset.eui === eui);
  }
  const d = state.devices.find((x) => x.eui === eui);
  $("h-device").textContent = d ? `— ${d.name || d.eui}` : "";
  const latest = (await api.latest([eui])).latest[eui] ?? [];
  const q = $("h-quantity");
  const keep = q.value;
  q.replaceChildren(...latest.map((v) => el("option", { value: v.quantity, textContent: v.quantity })));
  if (latest.some((v) => v.quantity === keep)) q.value = keep;
  chart.clear($("chart"));
  await refreshHistory();
  if (scroll) $("history").scrollIntoView({ behavior: "smooth", block: "start" });
}

async function refreshHistory() {
  const eui = state.selected;
  const quantity = $("h-quantity").value;
  const note = $("h-note");
  if (!eui || !quantity) {
    chart.clear($("chart"));
    note.textContent = eui ? "This device has no values yet." : "";
    return;
  }
  const hours = Number($("h-range").value);
  const from = new Date(Date.now() - hours * 3600 * 1000).toISOString();
  let h;
  try {
    h = await api.history(eui, quantity, from, $("h-res").value);
  } catch (e) {
    if (!refused(e)) throw e;
    chart.clear($("chart"));
    note.textContent = `Not shown: ${e.message}`;
    return;
  }
  if (h.points.length === 0) {
    chart.clear($("chart"));
    note.textContent = `No ${quantity} values in the last ${hours} h.`;
    return;
  }
  chart.draw($("chart"), h);
  $("chart").setAttribute("aria-label", `${h.label}: ${h.points.length} points over the last ${hours} h`);
  note.textContent = `${h.points.length} ${h.resolution === "raw" ? "values" : "buckets"} · ${h.label}`
    + (h.truncated ? " · truncated: choose a coarser resolution" : "");
}

// quarantine ------------------------------------------------------------------------------------------
function quarantineNote(text) {
  $("q-rows").replaceChildren(el("tr", {}, el("td", { colSpan: 5, class: "muted", textContent: text })));
}

async function refreshQuarantine() {
  let uplinks;
  try {
    ({ uplinks } = await api.quarantine());
  } catch (e) {
    if (!refused(e)) throw e;
    quarantineNote(`The journal is not open data: it needs a key with journal:read (${e.message}).`);
    return;
  }
  const rows = uplinks.map((u) => el("tr", {},
    el("td", {}, el("time", { dateTime: u.received_at, textContent: localTime(u.received_at) })),
    el("td", { class: "mono", textContent: u.dev_eui || "unknown" }),
    el("td", { textContent: `${u.source} · ${u.event} · ${u.fmt}` }),
    el("td", { class: "err", textContent: u.error || "" }),
    el("td", { textContent: bytes(u.raw_size) })));
  $("q-rows").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 5, class: "muted", textContent: "Nothing in quarantine." }))]));
}

// loop ------------------------------------------------------------------------------------------------
let busy = false;
let last = 0;
let pausedUntil = 0;

async function refresh(force = false) {
  const now = Date.now();
  const every = state.me && state.me.via !== "anonymous" ? REFRESH_MS : ANONYMOUS_REFRESH_MS;
  if (busy || document.hidden || (!force && (now < pausedUntil || now - last < every - 500))) return;
  busy = true;
  last = now;
  try {
    // each section on its own: one that fails leaves the others updated
    await refreshMe(); // first: what the caller may do decides what the alerts offer
    const done = await Promise.allSettled([refreshCounts(), refreshAlerts(), refreshDevices(), refreshQuarantine()]);
    const failed = done.find((d) => d.status === "rejected");
    if (failed) throw failed.reason;
    await refreshHistory();
    setStatus(`Updated ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (e.status === 429) {
      pausedUntil = Date.now() + (e.retryAfter || 60) * 1000;
      setStatus(`Rate limit reached for this caller: next update in ${e.retryAfter || 60} s`);
    } else {
      setStatus(`Update failed: ${e.message}`);
    }
  } finally {
    busy = false;
  }
}

function wire() {
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setKey($("key").value.trim());
    $("key").value = "";
    Object.assign(state, { selected: null, me: null, zoneLabels: null });
    refresh(true);
  });
  $("key-clear").addEventListener("click", () => {
    setKey("");
    Object.assign(state, { selected: null, me: null, zoneLabels: null });
    refresh(true);
  });
  const reload = () => { state.page = 0; refreshDevices().catch((e) => setStatus(e.message)); };
  $("f-kind").addEventListener("change", reload);
  $("f-zone").addEventListener("change", reload);
  $("f-q").addEventListener("input", () => { state.page = 0; renderDevices(); });
  $("prev").addEventListener("click", () => { state.page -= 1; renderDevices(); });
  $("next").addEventListener("click", () => { state.page += 1; renderDevices(); });
  $("h-eui").addEventListener("change", (e) => selectDevice(e.target.value, false));
  for (const id of ["h-quantity", "h-range", "h-res"]) {
    $(id).addEventListener("change", () => { chart.clear($("chart")); refreshHistory(); });
  }
  window.addEventListener("resize", () => chart.resize($("chart")));
  document.addEventListener("clapas:select-device", (e) => selectDevice(e.detail, true));
  document.addEventListener("visibilitychange", () => refresh());
}

wire();
refresh(true);
setInterval(refresh, REFRESH_MS);
