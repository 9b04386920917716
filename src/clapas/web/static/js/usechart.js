// A use page's chart: one of the use's devices (`data-kinds`, e.g. "water_level,rain_gauge"), one of its quantities
// (`data-quantity` first when it reports it), over 24 h or 7 days, raw or hourly/daily buckets — the history of
// `/api/v1/devices/{eui}/observations`, drawn with uPlot (drag to zoom, double click to go back). Devices the
// caller may not read are not offered (the API does not list them).

import { api, refused } from "./api.js";
import * as chart from "./chart.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { href, shown } from "./router.js";

const RANGES = [["24", "chart.range.24h"], ["168", "chart.range.7d"]];
const RESOLUTIONS = [["raw", "chart.res.raw"], ["1h", "chart.res.1h"], ["1d", "chart.res.1d"]];

export function quantityName(key, label = key) {
  const s = t(`quantity.${key}`);
  return s === `quantity.${key}` ? label : s;
}

const options = (pairs, value) => pairs.map(([v, key]) =>
  el("option", { value: v, textContent: t(key), selected: v === value }));

function build(box) {
  const $ = {
    device: el("select", { class: "uc-device" }),
    quantity: el("select", { class: "uc-quantity" }),
    range: el("select", { class: "uc-range" }, ...options(RANGES, box.dataset.range || "168")),
    res: el("select", { class: "uc-res" }, ...options(RESOLUTIONS, box.dataset.resolution || "raw")),
    link: el("a", { class: "uc-link" }),
    plot: el("div", { class: "chart", role: "img" }),
    note: el("p", { class: "muted uc-note" }),
  };
  box.replaceChildren(
    el("form", { class: "filters", onsubmit: () => false },
      el("label", {}, t("chart.device"), $.device), el("label", {}, t("chart.quantity"), $.quantity),
      el("label", {}, t("chart.range"), $.range), el("label", {}, t("chart.resolution"), $.res), $.link),
    $.plot, $.note);
  $.device.addEventListener("change", () => { $.quantity.replaceChildren(); chart.clear($.plot); refresh(box); });
  for (const s of [$.quantity, $.range, $.res]) s.addEventListener("change", () => { chart.clear($.plot); refresh(box); });
  box.ui = $;
  return $;
}

async function refresh(box) {
  const $ = box.ui ?? build(box);
  const kinds = box.dataset.kinds === "*" ? [""] : box.dataset.kinds.split(","); // "*": every device
  const lists = await Promise.all(kinds.map((k) => api.devices(k, "")));
  const devices = lists.flatMap((l) => l.devices);
  if (!devices.length) {
    chart.clear($.plot);
    $.note.textContent = t("chart.no_device");
    return;
  }
  const keep = $.device.value;
  $.device.replaceChildren(...devices.map((d) => el("option", { value: d.eui,
    textContent: d.name ? `${d.name} (${d.eui})` : d.eui })));
  $.device.value = devices.some((d) => d.eui === keep) ? keep : devices[0].eui;
  const eui = $.device.value;
  $.link.href = href.device(eui);
  $.link.textContent = t("chart.device_page");
  if (!$.quantity.options.length) {
    const latest = (await api.latest([eui])).latest[eui] ?? [];
    $.quantity.replaceChildren(...latest.map((v) => el("option", { value: v.quantity,
      textContent: quantityName(v.quantity) })));
    const wanted = (box.dataset.quantity || "").split(",").find((q) => latest.some((v) => v.quantity === q));
    if (wanted) $.quantity.value = wanted;
  }
  const quantity = $.quantity.value;
  if (!quantity) {
    chart.clear($.plot);
    $.note.textContent = t("chart.no_values");
    return;
  }
  const hours = Number($.range.value);
  let h;
  try {
    h = await api.history(eui, quantity, new Date(Date.now() - hours * 3600e3).toISOString(), $.res.value);
  } catch (e) {
    if (!refused(e)) throw e;
    chart.clear($.plot);
    $.note.textContent = t("common.not_shown", { message: e.message });
    return;
  }
  if (!h.points.length) {
    chart.clear($.plot);
    $.note.textContent = t("chart.no_points", { quantity: quantityName(quantity, h.label), hours });
    return;
  }
  chart.draw($.plot, h);
  $.plot.setAttribute("aria-label", t("chart.aria", { label: quantityName(quantity, h.label), n: h.points.length,
                                                      hours }));
  $.note.textContent = t(h.resolution === "raw" ? "chart.n_values" : "chart.n_buckets", { n: h.points.length })
    + (h.truncated ? ` · ${t("chart.truncated")}` : "");
}

export async function refreshUseCharts() {
  const boxes = [...document.querySelectorAll(".use-chart[data-kinds]")].filter(shown);
  await Promise.all(boxes.map((b) => refresh(b).catch((e) => {
    (b.ui?.note ?? b).textContent = t("common.unavailable", { message: e.message });
  })));
}
