// Charts drawn with the vendored uPlot (global `uPlot`, loaded by a classic script): one plot per container, kept
// in a WeakMap so that a page may hold several; updated in place when only the data changed (no flicker on
// auto-refresh). uPlot zooms by dragging across the plot and goes back with a double click.

import { language, t } from "./i18n.js";
import { number, unit } from "./format.js";

// time axis labels in the page's language: hours within a day, days beyond (the date under midnight)
function timeTicks(_, splits, _axis, _space, incr) {
  const lang = language();
  return splits.map((s) => {
    const d = new Date(s * 1000);
    const date = d.toLocaleDateString(lang, { day: "numeric", month: "short" });
    if (incr >= 86400) return date;
    const hm = d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    return d.getHours() === 0 && d.getMinutes() === 0 ? `${hm}\n${date}` : hm;
  });
}

const stamp = (_, ts) => (ts == null ? "–"
  : new Date(ts * 1000).toLocaleString(language(), { dateStyle: "medium", timeStyle: "short" }));

const plots = new WeakMap(); // container → { plot, shape }
const HEIGHT = 300;

const COLOURS = { mean: "#0b5cad", min: "#6b9bd1", max: "#c2410c" };

function width(box) {
  return Math.max(300, box.clientWidth - 10);
}

// A history from the API (`/devices/{eui}/observations`): raw points, or buckets with mean, min and max.
export function historySeries(h) {
  const xs = h.points.map((p) => Date.parse(p.time) / 1000);
  const label = t(`quantity.${h.quantity}`) === `quantity.${h.quantity}` ? h.label : t(`quantity.${h.quantity}`);
  if (h.resolution === "raw") {
    return { x: xs, unit: h.unit, yLabel: unit(h.unit) || label,
             series: [{ label, values: h.points.map((p) => p.value), stroke: COLOURS.mean, width: 1.5 }] };
  }
  return { x: xs, unit: h.unit, yLabel: unit(h.unit) || label, series: [
    { label: t("chart.mean"), values: h.points.map((p) => p.mean), stroke: COLOURS.mean, width: 2 },
    { label: t("chart.min"), values: h.points.map((p) => p.min), stroke: COLOURS.min, width: 1, dash: [4, 4] },
    { label: t("chart.max"), values: h.points.map((p) => p.max), stroke: COLOURS.max, width: 1, dash: [4, 4] },
  ] };
}

export function draw(box, h) {
  plot(box, historySeries(h), `${h.device}|${h.quantity}|${h.resolution}`);
}

// A chart of {x: [seconds], series: [{label, values, stroke, width, dash, points}], unit, yLabel, time}: the
// shape names what the chart shows; the same shape again only replaces the data. Without time (`time: false`), x
// is a plain number (an hour, a weekday) named by `xLabel` and shown by `xValue(x)` when given.
export function plot(box, spec, shape, height = HEIGHT) {
  if (typeof uPlot === "undefined") {
    box.textContent = t("chart.no_library");
    return null;
  }
  const data = [spec.x, ...spec.series.map((s) => s.values)];
  const known = plots.get(box);
  if (known && known.shape === shape && box.contains(known.plot.root)) {
    known.plot.setData(data);
    return known.plot;
  }
  clear(box);
  const u = unit(spec.unit || "");
  const fmt = (_, v) => (v == null ? "–" : `${number(v)} ${u}`.trim());
  const xValue = spec.xValue && ((v) => (v == null ? "–" : spec.xValue(v)));
  const opts = {
    width: width(box),
    height,
    series: [spec.time === false ? { label: spec.xLabel || "", ...(xValue && { value: (_, v) => xValue(v) }) }
      : { label: t("chart.time"), value: stamp },
      ...spec.series.map((s) => ({ label: s.label, stroke: s.stroke, width: s.width ?? 1.5, dash: s.dash,
                                   value: fmt, points: s.points ?? { show: false } }))],
    axes: [spec.time === false ? { label: spec.xLabel || "", space: 50,
                                   ...(xValue && { values: (_, ticks) => ticks.map(xValue) }) }
      : { space: 80, values: timeTicks },
      { label: spec.yLabel || u, size: 60, values: (_, ticks) => ticks.map((v) => number(v)) }],
    scales: { x: { time: spec.time !== false } },
  };
  const p = new uPlot(opts, data, box);
  plots.set(box, { plot: p, shape });
  box.dataset.points = String(spec.x.length);
  return p;
}

// A constant line (a threshold) over the chart's x values.
export const level = (x, value, label, stroke) =>
  ({ label, values: x.map(() => value), stroke, width: 1.5, dash: [6, 4] });

export function clear(box) {
  const known = plots.get(box);
  if (known) known.plot.destroy();
  plots.delete(box);
  delete box.dataset.points;
  box.replaceChildren();
}

export function resize(box) {
  const known = plots.get(box);
  if (known) known.plot.setSize({ width: width(box), height: known.plot.height });
}

window.addEventListener("resize", () => {
  for (const box of document.querySelectorAll(".chart")) resize(box);
});
