// A device's page (`#/device/<dev_eui>`): what the registry says of it, each of its quantities charted (raw values
// or hourly/daily rollups, over a day, a week or a month, zoomable: drag across a chart, double click to go back),
// its alerts, its health (the open health findings of `/api/v1/health`, restricted data) and its recent events
// (join, ack, log, location). A device the caller may not read says so, nothing else.

import { renderAlerts } from "./alerts.js";
import { api, ApiError, get, key, refused } from "./api.js";
import * as chart from "./chart.js";
import { el } from "./dom.js";
import { ago, localTime, number, withUnit } from "./format.js";
import { t } from "./i18n.js";
import { route } from "./router.js";
import { kindName } from "./overview.js";
import { quantityName } from "./usechart.js";

const $ = (id) => document.getElementById(id);
const EVENTS = 50;
let shownEui = "";

function facts(d) {
  const rows = [
    ["device.fact.eui", d.eui], ["device.fact.kind", kindName(d.kind)], ["device.fact.zone", d.zone || "–"],
    ["device.fact.class", t(`class.${d.class}`)],
    ["device.fact.last_seen", d.last_seen ? `${ago(d.last_seen)} (${localTime(d.last_seen)})` : ago(null)],
    ["device.fact.interval", d.expected_interval_s ? t("device.every_s", { s: number(d.expected_interval_s) }) : "–"],
    ["device.fact.radio", d.last_rssi == null ? "–" : `RSSI ${number(d.last_rssi)} dBm · SNR ${number(d.last_snr)} dB`],
    ["device.fact.decoder", d.decoder || "–"],
  ];
  return rows.map(([k, v]) => el("div", {}, el("dt", { textContent: t(k) }), el("dd", { textContent: String(v) })));
}

function eventRow(e) {
  const data = e.data && typeof e.data === "object"
    ? Object.entries(e.data).filter(([, v]) => v !== null && typeof v !== "object").slice(0, 6)
      .map(([k, v]) => `${k}: ${v}`).join(" · ") : String(e.data ?? "");
  return el("tr", { dataset: { event: e.event } },
    el("td", {}, el("time", { dateTime: e.time, textContent: localTime(e.time) })),
    el("td", { textContent: t(`device.event.${e.event}`) === `device.event.${e.event}` ? e.event
      : t(`device.event.${e.event}`) }),
    el("td", { class: "evidence", textContent: data }));
}

// one chart per quantity the device reports
async function refreshSeries(eui, latest) {
  const hours = Number($("dv-range").value);
  const resolution = $("dv-res").value;
  const from = new Date(Date.now() - hours * 3600e3).toISOString();
  const box = $("dv-charts");
  const known = new Set(latest.map((v) => v.quantity));
  for (const fig of [...box.children]) if (!known.has(fig.dataset.quantity)) fig.remove();
  await Promise.all(latest.map(async (v) => {
    let fig = box.querySelector(`figure[data-quantity="${CSS.escape(v.quantity)}"]`);
    if (!fig) {
      fig = el("figure", { class: "series", dataset: { quantity: v.quantity } },
        el("figcaption", {}, el("span", { class: "q", textContent: quantityName(v.quantity) }),
          el("span", { class: "muted now", textContent: "" })),
        el("div", { class: "chart small", role: "img" }), el("p", { class: "muted note" }));
      box.append(fig);
    }
    fig.querySelector(".now").textContent = ` · ${withUnit(v.value, v.unit)} (${ago(v.time)})`;
    const plot = fig.querySelector(".chart");
    const note = fig.querySelector(".note");
    let h;
    try {
      h = await api.history(eui, v.quantity, from, resolution);
    } catch (e) {
      if (!refused(e)) throw e;
      chart.clear(plot);
      note.textContent = t("common.not_shown", { message: e.message });
      return;
    }
    if (!h.points.length) {
      chart.clear(plot);
      note.textContent = t("chart.no_points", { quantity: quantityName(v.quantity, h.label), hours });
      return;
    }
    chart.draw(plot, h);
    plot.setAttribute("aria-label", t("chart.aria", { label: quantityName(v.quantity, h.label),
                                                      n: h.points.length, hours }));
    note.textContent = t(h.resolution === "raw" ? "chart.n_values" : "chart.n_buckets", { n: h.points.length })
      + (h.truncated ? ` · ${t("chart.truncated")}` : "");
  }));
  if (!latest.length) box.replaceChildren(el("p", { class: "muted", textContent: t("chart.no_values") }));
}

async function refreshHealth(eui, alerts) {
  const body = $("dv-health").querySelector(".body");
  const own = alerts.filter((a) => a.rule.startsWith("health.") && a.state !== "resolved");
  let listed = [];
  let note = null;
  try {
    listed = (await get("api/v1/health")).listed.filter((l) => l.eui === eui);
  } catch (e) {
    if (!refused(e)) throw e;
    note = el("p", { class: "muted locked", textContent: t("common.not_open", { message: e.message }) });
  }
  const problems = listed.map((l) => el("li", { dataset: { problem: l.problem } },
    el("strong", { textContent: t(`health.problem.${l.problem}`) }),
    el("span", { class: "muted", textContent: ` · ${t(`alerts.severity.${l.severity}`)} · ${ago(l.since)}` }),
    l.why ? el("div", { class: "muted", textContent: l.why }) : null));
  const fine = !listed.length && !own.length && !note;
  body.replaceChildren(
    fine ? el("p", { class: "ok", dataset: { health: "ok" }, textContent: t("device.health_ok") }) : null,
    problems.length ? el("ul", { class: "problems" }, ...problems) : null,
    !problems.length && own.length ? el("p", { textContent: t("device.health_alerts", { n: own.length }) }) : null,
    note);
}

const tagsText = (tags) => Object.entries(tags || {}).map(([k, v]) => `${k}=${v}`).join(";");

// Its tags, and for a key of the department of its use (`GET …/tags`: may_change) a form to replace them; the API
// checks them by the registry file's rules and says why when it refuses.
async function refreshTags(d) {
  $("dv-tags-list").textContent = tagsText(d.tags) || t("device.tags_none");
  let whose = null;
  try {
    whose = await get(`api/v1/devices/${encodeURIComponent(d.eui)}/tags`);
  } catch (e) {
    if (!refused(e)) throw e;
  }
  $("dv-tags-form").hidden = !whose?.may_change;
  if (whose?.may_change && document.activeElement !== $("dv-tags-text")) $("dv-tags-text").value = tagsText(whose.tags);
}

function parseTags(text) {
  const tags = {};
  for (const part of text.split(";").map((p) => p.trim()).filter(Boolean)) {
    const at = part.indexOf("=");
    if (at < 1) throw new Error(t("device.tags_bad", { part }));
    tags[part.slice(0, at).trim()] = part.slice(at + 1).trim();
  }
  return tags;
}

async function saveTags(ev) {
  ev.preventDefault();
  const msg = $("dv-tags-message");
  try {
    const k = key();
    const res = await fetch(new URL(`api/v1/devices/${encodeURIComponent(shownEui)}/tags`, document.baseURI), {
      method: "PUT",
      headers: { Accept: "application/json", "Content-Type": "application/json",
        ...(k ? { Authorization: `Bearer ${k}` } : {}) },
      body: JSON.stringify({ tags: parseTags($("dv-tags-text").value) }),
    });
    const answer = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(answer?.error?.message ?? `${res.status}`, res.status);
    msg.dataset.state = "ok";
    msg.textContent = t("device.tags_saved");
    $("dv-tags-list").textContent = tagsText(answer.tags) || t("device.tags_none");
  } catch (e) {
    msg.dataset.state = "error";
    msg.textContent = e.message;
  }
}

export async function refreshDevice() {
  const { page, arg: eui } = route();
  if (page !== "device") return;
  if (eui !== shownEui) {
    shownEui = eui;
    $("dv-charts").replaceChildren();
    for (const b of $("dv-charts").querySelectorAll(".chart")) chart.clear(b);
  }
  $("dv-title").textContent = "";
  let d;
  try {
    d = await get(`api/v1/devices/${encodeURIComponent(eui)}`, { events: EVENTS });
  } catch (e) {
    $("dv-facts").replaceChildren();
    $("dv-note").textContent = refused(e) ? t("device.refused", { message: e.message })
      : t("common.unavailable", { message: e.message });
    $("dv-body").hidden = true;
    return;
  }
  if (eui !== route().arg) return;
  $("dv-body").hidden = false;
  $("dv-note").textContent = "";
  $("dv-title").textContent = d.name ? `${d.name}` : d.eui;
  document.title = `${d.name || d.eui} · clapas`;
  $("dv-facts").replaceChildren(...facts(d));
  await refreshTags(d);
  const { alerts } = await api.deviceAlerts(eui);
  renderAlerts($("dv-alerts"), alerts, false, refreshDevice);
  $("dv-event-rows").replaceChildren(...(d.events.length ? d.events.map(eventRow)
    : [el("tr", {}, el("td", { colSpan: 3, class: "muted", textContent: t("device.no_events") }))]));
  await Promise.all([refreshSeries(eui, d.latest), refreshHealth(eui, alerts)]);
}

export function wireDevice() {
  $("dv-tags-form").addEventListener("submit", saveTags);
  for (const id of ["dv-range", "dv-res"]) {
    $(id).addEventListener("change", () => {
      for (const b of $("dv-charts").querySelectorAll(".chart")) chart.clear(b);
      refreshDevice();
    });
  }
}
