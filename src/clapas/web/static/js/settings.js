// The departments' settings page (#/settings): the settings the key may change (thresholds, intervals, a gauge's
// heights, rule switches, notifier routes), a form to change one or put the config file's value back, and the
// history of changes. Mounts on <section id="settings-page">; the API checks every change (the department's scope,
// the config file's rules) and says why when it refuses. DOM built with textContent only.

import { ApiError, get, key } from "./api.js";
import { el } from "./dom.js";
import { language, t } from "./i18n.js";

const ROOT_ID = "settings-page";
const REFRESH_MS = 15000;
const HISTORY = 50;
const DEPARTMENTS = ["water", "environment", "mobility", "culture", "platform"];

const state = { settings: [], departments: {}, history: [], filter: "", busy: false };
const ids = {};

function $(name) {
  return ids[name];
}

async function send(method, path, params, body) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const k = key();
  const res = await fetch(url, {
    method,
    headers: { Accept: "application/json", "Content-Type": "application/json",
      ...(k ? { Authorization: `Bearer ${k}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(answer?.error?.message ?? `${res.status} ${res.statusText}`, res.status);
  return answer;
}

const numbers = new Intl.NumberFormat(language(), { maximumFractionDigits: 6 });

function shown(v) {
  if (v === null || v === undefined) return t("settings.value.unset");
  if (typeof v === "number") return numbers.format(v);
  if (typeof v === "boolean") return t(v ? "settings.value.on" : "settings.value.off");
  if (Array.isArray(v)) return v.map(shown).join(" · ");
  // a device's or zone's tags (history rows of devices.<eui>.tags, zones.<id>.tags): as the registry file writes them
  if (typeof v === "object") return Object.entries(v).map(([k, x]) => `${k}=${x}`).join(";");
  return String(v);
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString(language()) : "";
}

function department(d) {
  return t(`settings.department.${d}`);
}

// The text typed for a value: JSON (2.4, true, [1, 2], null), else the text itself for settings that take text.
function parse(text, kind) {
  const s = text.trim();
  if (s === "" && kind.includes("null")) return { value: null };
  try {
    return { value: JSON.parse(s) };
  } catch {
    if (kind.includes("str")) return { value: text };
    return { error: t("settings.form.not_a_value", { kind }) };
  }
}

function build(root) {
  const title = el("h2", { id: "settings-h", textContent: t("settings.title") });
  root.setAttribute("aria-labelledby", "settings-h");
  ids.who = el("p", { class: "muted", id: "settings-who" });
  ids.path = el("select", { id: "settings-path" });
  ids.value = el("input", { id: "settings-value", type: "text", autocomplete: "off" });
  ids.apply = el("button", { type: "submit", id: "settings-apply", textContent: t("settings.form.apply") });
  ids.revert = el("button", { type: "button", id: "settings-revert", textContent: t("settings.form.revert") });
  ids.current = el("p", { class: "muted", id: "settings-current" });
  ids.message = el("p", { id: "settings-message", role: "status" });
  ids.form = el("form", { id: "settings-form", class: "filters" },
    el("label", {}, t("settings.form.setting"), " ", ids.path),
    el("label", {}, t("settings.form.value"), " ", ids.value), ids.apply, ids.revert);
  ids.filter = el("select", { id: "settings-department" },
    el("option", { value: "", textContent: t("settings.filter.all") }),
    ...DEPARTMENTS.map((d) => el("option", { value: d, textContent: department(d) })));
  ids.rows = el("tbody", { id: "settings-rows" });
  ids.history = el("tbody", { id: "settings-history" });
  const head = (...keys) => el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { scope: "col", textContent: t(k) }))));
  root.replaceChildren(
    title, ids.who, ids.form, ids.current, ids.message,
    el("form", { class: "filters", onsubmit: () => false },
      el("label", {}, t("settings.filter.department"), " ", ids.filter)),
    el("div", { class: "scroll" }, el("table", {},
      head("settings.col.setting", "settings.col.department", "settings.col.value", "settings.col.base",
        "settings.col.changed"), ids.rows)),
    el("h3", { textContent: t("settings.history.title") }),
    el("div", { class: "scroll" }, el("table", {},
      head("settings.history.when", "settings.history.who", "settings.col.setting", "settings.history.before",
        "settings.history.after"), ids.history)),
  );
  ids.form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  ids.revert.addEventListener("click", () => revert());
  ids.path.addEventListener("change", () => pick(ids.path.value));
  ids.filter.addEventListener("change", () => { state.filter = ids.filter.value; render(); });
}

function say(text, ok) {
  ids.message.textContent = text;
  ids.message.dataset.state = ok ? "ok" : "error";
  ids.message.className = ok ? "" : "err";
}

function entry(path) {
  return state.settings.find((s) => s.path === path);
}

function pick(path) {
  const s = entry(path);
  ids.path.value = path;
  if (!s) return;
  const v = inUse(s) ?? null;
  ids.value.value = v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
  ids.current.textContent = t("settings.form.current", {
    value: shown(inUse(s)), base: shown(baseOf(s)), department: department(s.department), kind: s.kind,
  });
  ids.revert.disabled = !s.overridden;
}

// per device, what applies when the setting is not set (the gauge's registry tag) is shown as its value
const inUse = (s) => (s.device ? s.in_use : s.value);
const baseOf = (s) => (s.device ? s.base_in_use : s.base);

function render() {
  const held = DEPARTMENTS.filter((d) => state.departments[d]);
  ids.who.textContent = held.length
    ? t("settings.who", { departments: held.map(department).join(", ") })
    : t("settings.none");
  ids.form.hidden = held.length === 0;
  const selected = ids.path.value;
  const listed = state.settings.filter((s) => !state.filter || s.department === state.filter);
  ids.path.replaceChildren(...state.settings.map((s) => el("option", { value: s.path, textContent: s.path })));
  if (selected && entry(selected)) ids.path.value = selected;
  ids.rows.replaceChildren(...(listed.length ? listed.map((s) => el("tr", {
    dataset: { path: s.path, overridden: String(s.overridden) }, class: s.overridden ? "nonzero" : "",
    onclick: () => pick(s.path),
  }, el("td", {}, el("code", { textContent: s.path })),
  el("td", { textContent: department(s.department) }),
  el("td", { class: "value", textContent: shown(inUse(s)) }),
  el("td", { class: "base", textContent: shown(baseOf(s)) }),
  el("td", { textContent: s.overridden ? t("settings.changed", { who: s.changed_by, when: when(s.changed_at) }) : "" })))
    : [el("tr", {}, el("td", { colspan: 5, class: "muted", textContent: t("settings.empty") }))]));
  ids.history.replaceChildren(...(state.history.length ? state.history.map((h) => el("tr", {
    dataset: { change: String(h.id) },
  }, el("td", { textContent: when(h.time) }), el("td", { textContent: `${h.actor}${h.role ? ` (${h.role})` : ""}` }),
  el("td", {}, el("code", { textContent: h.path })), el("td", { textContent: shown(h.previous) }),
  el("td", { textContent: h.removed ? t("settings.history.reverted") : shown(h.value) })))
    : [el("tr", {}, el("td", { colspan: 5, class: "muted", textContent: t("settings.history.empty") }))]));
  if (!ids.value.value && ids.path.value) pick(ids.path.value);
}

async function load() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [listing, history] = await Promise.all([get("api/v1/settings"),
      get("api/v1/settings/history", { limit: HISTORY })]);
    state.settings = listing.settings;
    state.departments = listing.departments;
    state.history = history.changes;
    render();
  } catch (e) {
    state.settings = [];
    state.departments = {};
    state.history = [];
    render();
    const refusedNow = e instanceof ApiError && (e.status === 401 || e.status === 403);
    ids.who.textContent = refusedNow ? t("settings.refused_list", { reason: e.message }) : e.message;
  } finally {
    state.busy = false;
  }
}

async function apply() {
  const s = entry(ids.path.value);
  if (!s) return;
  const parsed = parse(ids.value.value, s.kind);
  if (parsed.error) {
    say(parsed.error, false);
    return;
  }
  await change(s.path, () => send("PUT", "api/v1/settings", null, { path: s.path, value: parsed.value }),
    t("settings.saved", { path: s.path, value: shown(parsed.value) }));
}

async function revert() {
  const s = entry(ids.path.value);
  if (!s) return;
  await change(s.path, () => send("DELETE", "api/v1/settings", { path: s.path }),
    t("settings.reverted", { path: s.path }));
}

// A change or a revert: its outcome said, then the table read again with the setting still selected.
async function change(path, request, done) {
  try {
    await request();
    say(done, true);
  } catch (e) {
    say(t(e.status === 422 ? "settings.invalid" : "settings.refused", { reason: e.message }), false);
    return;
  }
  ids.value.value = "";
  await load();
  pick(path);
}

function mount() {
  const root = document.getElementById(ROOT_ID);
  if (!root) return;
  build(root);
  // read while the page is shown only (router.js hides the others): not on another page's first view
  const loadShown = () => { if (!root.hidden) load(); };
  loadShown();
  setInterval(loadShown, REFRESH_MS);
  // the key typed in the header (main.js) changes what may be changed here
  document.getElementById("key-form")?.addEventListener("submit", () => setTimeout(loadShown, 0));
  document.getElementById("key-clear")?.addEventListener("click", () => setTimeout(loadShown, 0));
  document.addEventListener("clapas:route", loadShown);
}

mount();
