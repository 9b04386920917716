// An alert's evidence drawn: what made the detector open it, as a chart beside the figures (alertpage.js).
//
// - water.district_night_flow: the district's water balance of the days before the night (system input, billed,
//   non-revenue water) and the minimum night flow against the baseline (20th percentile of the previous nights)
//   and the threshold (baseline + allowed rise); the district meters' flow over the nights when the caller may
//   read it;
// - heat.heatwave: the daily Tn and Tx of the IBM window against the department's IBMn and IBMx thresholds;
// - flood.river_level / river_rise: the gauge's level around the alert against its yellow, orange, red heights;
// - flood.rain: the accumulations over each window against the heavy, intense and very intense depths;
// - flood.warning: both, from its river and rain parts;
// - museum.climate: the room's temperature and humidity against the class's bands;
// - any other alert on a device: the device's quantity the rule watches, around the alert.
// Each chart says what it is; series the caller may not read are left out with a note.

import { api, refused } from "./api.js";
import * as chart from "./chart.js";
import { el } from "./dom.js";
import { day } from "./format.js";
import { t } from "./i18n.js";
import { quantityName } from "./usechart.js";

const HOUR = 3600e3;
const DAY = 24 * HOUR;
const C = { a: "#0b5cad", b: "#2e7d32", c: "#c2410c", yellow: "#d4a800", orange: "#f57c00", red: "#d32f2f",
            grey: "#6e7781" };
// the quantity a rule watches on its device
const WATCHED = [["water.", ["water.flow", "water.volume"]], ["flood.rain", ["rain.amount"]],
  ["flood.", ["water.level"]], ["heat.", ["air.temperature"]], ["air.", ["air.pm10", "air.no2", "air.pm2_5", "air.o3"]],
  ["museum.", ["air.temperature", "air.humidity"]], ["health.battery", ["battery", "battery.voltage"]],
  ["health.radio", ["radio.margin"]], ["mobility.", ["counter.count", "bikeshare.bikes_available"]]];

const dayX = (iso) => Date.parse(`${iso}T12:00:00`) / 1000;

function figure(kind, caption, ...children) {
  return el("figure", { class: "evidence-chart", dataset: { evidence: kind } },
    el("figcaption", { textContent: caption }), ...children);
}

function chartBox(fig, spec, shape, height = 260) {
  const box = el("div", { class: "chart small", role: "img", "aria-label": fig.querySelector("figcaption").textContent });
  fig.append(box); // in the document already: uPlot measures its container
  chart.plot(box, spec, shape, height);
  return box;
}

// The history of one quantity of a device over [from, to), raw; null (and a note in `fig`) when refused or empty.
async function history(fig, eui, quantity, from, to, resolution = "raw") {
  try {
    const h = await api.historyWindow(eui, quantity, from.toISOString(), to.toISOString(), resolution);
    if (!h.points.length) {
      fig.append(el("p", { class: "muted", textContent: t("evidence.no_series") }));
      return null;
    }
    return h;
  } catch (e) {
    if (!refused(e)) throw e;
    fig.append(el("p", { class: "muted locked", textContent: t("common.not_shown", { message: e.message }) }));
    return null;
  }
}

function span(a, before, after = 6 * HOUR) {
  const opened = Date.parse(a.opened_at);
  const end = a.resolved_at ? Math.min(Date.parse(a.resolved_at) + after, Date.now()) : Date.now();
  return [new Date(opened - before), new Date(Math.max(end, opened + HOUR))];
}

function seriesOf(h) {
  return { x: h.points.map((p) => Date.parse(p.time) / 1000),
           values: h.points.map((p) => (h.resolution === "raw" ? p.value : p.mean)) };
}

// a series' values at the times `x` (null where it has none)
function aligned(x, s) {
  const at = new Map(s.x.map((v, i) => [v, s.values[i]]));
  return x.map((v) => at.get(v) ?? null);
}

// --- water.district_night_flow ----------------------------------------------------------------------------------
async function nightFlow(a, out) {
  const ev = a.evidence;
  const balance = ev.balance_last_days || [];
  if (balance.length) {
    const x = balance.map((b) => dayX(b.day));
    const fig = figure("balance", t("evidence.balance", { zone: a.subject }));
    out.append(fig);
    chartBox(fig, { x, unit: "m3", yLabel: "m³", series: [
      { label: t("evidence.system_input"), values: balance.map((b) => b.system_input_m3), stroke: C.a, width: 2,
        points: { show: true } },
      { label: t("evidence.billed"), values: balance.map((b) => b.billed_metered_m3), stroke: C.b, points: { show: true } },
      { label: t("evidence.nrw"), values: balance.map((b) => b.non_revenue_water_m3), stroke: C.c, width: 2,
        points: { show: true } }] }, `balance|${a.id}`);
  }
  const threshold = ev.baseline_p20_lph + ev.allowed_rise_lph;
  const fig = figure("night-flow", t("evidence.night_flow", { zone: a.subject,
    night: day(ev.night, { dateStyle: "medium" }) }));
  out.append(fig);
  const [from, to] = span(a, 8 * DAY, DAY);
  const { devices } = await api.devices("district_meter", a.subject);
  const drawn = [];
  for (const d of devices) {
    const h = await history(fig, d.eui, "water.flow", from, to, "1h");
    if (h) drawn.push([d, seriesOf(h)]);
  }
  if (drawn.length) {
    const x = drawn[0][1].x;
    chartBox(fig, { x, unit: "L/h", yLabel: "L/h", series: [
      ...drawn.map(([d, s], i) => ({ label: d.name || d.eui, values: aligned(x, s),
                                     stroke: [C.a, C.b, C.c][i % 3], width: 1.5 })),
      chart.level(x, ev.baseline_p20_lph, t("evidence.baseline"), C.grey),
      chart.level(x, threshold, t("evidence.threshold"), C.red)] }, `mnf|${a.id}`);
    return;
  }
  // the minimum night flow against its baseline and threshold, from the evidence alone
  const x = [dayX(ev.night) - DAY / 1000, dayX(ev.night)];
  chartBox(fig, { x, unit: "L/h", yLabel: "L/h", series: [
    { label: t("evidence.mnf"), values: [null, ev.min_night_flow_lph], stroke: C.a, width: 2,
      points: { show: true, size: 9 } },
    chart.level(x, ev.baseline_p20_lph, t("evidence.baseline"), C.grey),
    chart.level(x, threshold, t("evidence.threshold"), C.red)] }, `mnf|${a.id}`);
}

// --- heat.heatwave --------------------------------------------------------------------------------------------------
function heatwave(a, out) {
  const ev = a.evidence;
  const daily = ev.daily || [];
  if (!daily.length) return;
  const x = daily.map((d) => dayX(d.day));
  const fig = figure("ibm", t("evidence.ibm", { department: ev.department || "" }));
  out.append(fig);
  chartBox(fig, { x, unit: "Cel", yLabel: "°C", series: [
    { label: "Tn", values: daily.map((d) => d.tn_c), stroke: C.a, width: 2, points: { show: true } },
    { label: "Tx", values: daily.map((d) => d.tx_c), stroke: C.c, width: 2, points: { show: true } },
    chart.level(x, ev.ibmn_threshold_c, t("evidence.ibmn_threshold"), C.a),
    chart.level(x, ev.ibmx_threshold_c, t("evidence.ibmx_threshold"), C.red)] }, `ibm|${a.id}`);
  fig.append(el("p", { class: "muted", textContent: t("evidence.ibm_values", {
    ibmn: ev.ibmn_c, ibmx: ev.ibmx_c, n: ev.ibmn_threshold_c, x: ev.ibmx_threshold_c }) }));
}

// --- floods ---------------------------------------------------------------------------------------------------------
async function river(a, ev, out) {
  const fig = figure("river", t("evidence.river", { gauge: ev.gauge || a.subject }));
  out.append(fig);
  const [from, to] = span(a, DAY);
  const h = await history(fig, ev.gauge || a.subject, "water.level", from, to);
  const s = h ? seriesOf(h) : { x: [Date.parse(ev.at || a.opened_at) / 1000], values: [ev.level_m] };
  const levels = [["yellow", ev.threshold_yellow_m], ["orange", ev.threshold_orange_m], ["red", ev.threshold_red_m]]
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => chart.level(s.x, v, t(`evidence.height.${k}`), C[k]));
  chartBox(fig, { x: s.x, unit: "m", yLabel: "m", series: [
    { label: t("evidence.level"), values: s.values, stroke: C.a, width: 2, points: { show: s.x.length < 3 } },
    ...levels] }, `river|${a.id}`);
}

function rain(a, ev, out) {
  const windows = Object.keys(ev.accumulations_mm || {});
  if (!windows.length) return;
  const x = windows.map((w) => parseFloat(w));
  const fig = figure("rain", t("evidence.rain", { gauge: ev.gauge || a.subject }));
  out.append(fig);
  const pick = (o) => windows.map((w) => o?.[w] ?? null);
  chartBox(fig, { x, time: false, xLabel: t("evidence.window_h"), unit: "mm", yLabel: "mm", series: [
    { label: t("evidence.accumulation"), values: pick(ev.accumulations_mm), stroke: C.a, width: 2.5,
      points: { show: true } },
    { label: t("evidence.heavy"), values: pick(ev.heavy_mm), stroke: C.yellow, dash: [6, 4] },
    { label: t("evidence.intense"), values: pick(ev.intense_mm), stroke: C.orange, dash: [6, 4] },
    { label: t("evidence.very_intense"), values: pick(ev.very_intense_mm), stroke: C.red, dash: [6, 4] }] },
  `rain|${a.id}`);
}

// --- museum.climate -------------------------------------------------------------------------------------------------
async function museum(a, out) {
  const ev = a.evidence;
  const { devices } = await api.devices("indoor_climate", a.subject);
  const [from, to] = span(a, DAY, DAY);
  for (const [q, band] of [["air.temperature", ev.band_t], ["air.humidity", ev.band_rh]]) {
    const fig = figure(q, t("evidence.room", { quantity: quantityName(q), room: a.subject }));
    out.append(fig);
    const d = devices[0];
    const h = d ? await history(fig, d.eui, q, from, to) : null;
    if (!h) continue;
    const s = seriesOf(h);
    chartBox(fig, { x: s.x, unit: h.unit, series: [
      { label: d.name || d.eui, values: s.values, stroke: C.a, width: 2 },
      ...(band || []).map((v, i) => chart.level(s.x, v, t(i ? "evidence.band_high" : "evidence.band_low"), C.red))] },
    `${q}|${a.id}`);
  }
}

// --- any alert on a device ------------------------------------------------------------------------------------------
async function deviceSeries(a, out) {
  const latest = (await api.latest([a.subject])).latest[a.subject] ?? [];
  const wanted = WATCHED.find(([p]) => a.rule.startsWith(p))?.[1] ?? [];
  const q = wanted.find((w) => latest.some((v) => v.quantity === w)) ?? latest[0]?.quantity;
  if (!q) return;
  const fig = figure("series", t("evidence.device_series", { quantity: quantityName(q), device: a.subject }));
  out.append(fig);
  const [from, to] = span(a, 2 * DAY);
  const h = await history(fig, a.subject, q, from, to, to - from > 4 * DAY ? "1h" : "raw");
  if (!h) return;
  const s = seriesOf(h);
  const ev = a.evidence || {};
  const extra = [];
  for (const [k, label] of [["min_flow_lph", "evidence.min_flow"], ["min_hourly_flow_lph", "evidence.min_flow"]]) {
    if (typeof ev[k] === "number") extra.push(chart.level(s.x, ev[k], t(label), C.c));
  }
  chartBox(fig, { x: s.x, unit: h.unit, series: [
    { label: quantityName(q, h.label), values: s.values, stroke: C.a, width: 1.5 }, ...extra] }, `dev|${a.id}`);
}

// Draw the evidence of alert `a` into `out`; how many charts were drawn.
export async function drawEvidence(a, out) {
  out.replaceChildren();
  if (a.withheld || !a.evidence) return 0;
  const ev = a.evidence;
  if (a.rule === "water.district_night_flow" && "min_night_flow_lph" in ev) await nightFlow(a, out);
  else if (a.rule === "heat.heatwave") heatwave(a, out);
  else if ((a.rule === "flood.river_level" || a.rule === "flood.river_rise") && "level_m" in ev) {
    await river(a, ev, out);
  } else if (a.rule === "flood.rain") rain(a, ev, out);
  else if (a.rule === "flood.warning") {
    if (ev.river) await river(a, ev.river, out);
    if (ev.rain) rain(a, ev.rain, out);
  } else if (a.rule === "museum.climate" && a.subject_kind === "zone") await museum(a, out);
  else if (a.subject_kind === "device") await deviceSeries(a, out);
  return out.querySelectorAll(".chart").length;
}
