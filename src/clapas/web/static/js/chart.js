// The history chart, drawn with the vendored uPlot (global `uPlot`, loaded by a classic script).

import { unit } from "./format.js";

let plot = null;
let shape = "";

function seriesFor(h) {
  const u = unit(h.unit);
  const fmt = (_, v) => (v == null ? "–" : `${v.toFixed(2)} ${u}`.trim());
  if (h.resolution === "raw") {
    return [{ label: h.quantity, stroke: "#0b5cad", width: 1.5, value: fmt, points: { show: false } }];
  }
  return [
    { label: "mean", stroke: "#0b5cad", width: 2, value: fmt },
    { label: "min", stroke: "#6b9bd1", width: 1, dash: [4, 4], value: fmt },
    { label: "max", stroke: "#c2410c", width: 1, dash: [4, 4], value: fmt },
  ];
}

function columns(h) {
  const xs = h.points.map((p) => Date.parse(p.time) / 1000);
  if (h.resolution === "raw") return [xs, h.points.map((p) => p.value)];
  return [xs, h.points.map((p) => p.mean), h.points.map((p) => p.min), h.points.map((p) => p.max)];
}

// Draw (or update in place when only the data changed, so auto-refresh does not flicker).
export function draw(el, h) {
  if (typeof uPlot === "undefined") {
    el.textContent = "Chart library not loaded.";
    return;
  }
  const data = columns(h);
  const key = `${h.device}|${h.quantity}|${h.resolution}`;
  if (plot && shape === key) {
    plot.setData(data);
    return;
  }
  clear(el);
  shape = key;
  const width = Math.max(300, el.clientWidth - 10);
  const opts = {
    width,
    height: 300,
    series: [{}, ...seriesFor(h)],
    axes: [{ space: 80 }, { label: unit(h.unit) || h.quantity, size: 60 }],
    scales: { x: { time: true } },
  };
  plot = new uPlot(opts, data, el);
}

export function clear(el) {
  if (plot) plot.destroy();
  plot = null;
  shape = "";
  el.replaceChildren();
}

export function resize(el) {
  if (plot) plot.setSize({ width: Math.max(300, el.clientWidth - 10), height: 300 });
}
