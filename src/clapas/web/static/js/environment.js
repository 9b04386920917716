// The environment panels: the day's ATMO index per zone (air page), heatwave status and cool refuges (heat page),
// river levels and rain (floods page), museum rooms' conformity (museum page), the households' water consumption
// per district (water page, open aggregates). Each panel reads one report of the API, when its page is shown, and
// fails on its own (a message in the panel).

import { get } from "./api.js";
import { el } from "./dom.js";
import { day as dayLabel, integer, localTime, number, percent } from "./format.js";
import { t } from "./i18n.js";
import { empty, fill, run } from "./panels.js";

const REFRESH_MS = 60000; // reports change by the hour: a minute is plenty

const heatState = (s) => t(`heat.state.${s}`);
const shortState = (s) => t(`heat.short.${s}`);
// Vigicrues colours of a river level's class
const CLASS_COLOURS = { green: "#2e7d32", yellow: "#f2c500", orange: "#f57c00", red: "#d32f2f" };

const deg = (v) => (v === null || v === undefined ? "–" : `${number(v)} °C`);
const head = (...keys) => el("thead", {}, el("tr", {}, ...keys.map((k) =>
  el("th", { scope: "col", textContent: k.startsWith("=") ? k.slice(1) : t(k) }))));

// air ------------------------------------------------------------------------------------------------------------
function atmoChip(index, label, colour, size = "") {
  // the two darkest ATMO colours need light text
  return el("span", { class: `atmo ${size}${index >= 5 ? " dark" : ""}${index ? "" : " na"}`, textContent: label,
                      style: colour ? `background:${colour}` : "" });
}

async function refreshAir() {
  const r = await get("api/v1/air/atmo");
  if (!r.zones.length) { fill("env-air", empty(t("air.none"))); return; }
  const rows = r.zones.map((z) => el("tr", { dataset: { zone: z.zone, index: z.index ?? "" } },
    el("th", { scope: "row", textContent: z.name }),
    el("td", {}, atmoChip(z.index, z.label, z.colour)),
    el("td", { class: "muted", textContent: z.drivers.length ? z.drivers.join(", ").replace("_", ".")
      : (z.missing.length ? t("air.missing", { what: z.missing.join(", ") }) : "") }),
    el("td", { class: "num", textContent: `${z.sensors} · ${percent(z.completeness, 0)}`,
               title: t("air.data_title") }),
    el("td", {}, atmoChip(z.previous.index, z.previous.label, z.previous.colour, "small"))));
  fill("env-air",
    el("table", {},
      el("caption", { textContent: t("air.caption", { day: dayLabel(r.day) }) }),
      head("air.col.zone", "air.col.today", "air.col.cause", "air.col.data", "air.col.yesterday"),
      el("tbody", {}, ...rows)),
    el("p", { class: "note", textContent: r.statement }));
}

// heat -----------------------------------------------------------------------------------------------------------
async function refreshHeat() {
  const r = await get("api/v1/heat/status", { days: 5 });
  if (!r.stations.length) { fill("env-heat", empty(t("heat.no_station"))); return; }
  const th = r.thresholds;
  const over = (v, limit) => (v !== null && v >= limit ? "over" : "");
  const tables = r.stations.map((s) => el("table", { dataset: { station: s.eui } },
    el("caption", { textContent: s.name }),
    head("heat.col.day", "=Tn", "=Tx", "=IBMn", "=IBMx", "heat.col.state"),
    el("tbody", {}, ...s.days.map((d) => el("tr", { dataset: { state: d.state } },
      el("td", { textContent: dayLabel(d.day) }),
      el("td", { class: `num ${over(d.tn, th.ibmn)}`, textContent: deg(d.tn) }),
      el("td", { class: `num ${over(d.tx, th.ibmx)}`, textContent: deg(d.tx) }),
      el("td", { class: `num ${over(d.ibmn, th.ibmn)}`, textContent: deg(d.ibmn) }),
      el("td", { class: `num ${over(d.ibmx, th.ibmx)}`, textContent: deg(d.ibmx) }),
      el("td", {}, el("span", { class: `heat ${d.state}`, textContent: shortState(d.state),
                                title: heatState(d.state) })))))));
  const latest = r.latest_available;
  fill("env-heat",
    el("p", { class: "headline" }, t("heat.today"),
      el("span", { class: `heat ${r.state}`, id: "heat-today", textContent: heatState(r.state) }),
      latest && latest.day !== r.today
        ? el("span", { class: "muted", textContent: ` · ${dayLabel(latest.day)}: ${heatState(latest.state)}` })
        : null),
    el("p", { class: "muted", textContent: t("heat.thresholds", { name: th.name, department: th.department,
                                                                 ibmn: number(th.ibmn), ibmx: number(th.ibmx),
                                                                 days: th.ibm_days }) }),
    ...tables,
    el("p", { class: "note", textContent: r.statement }));
}

// cool refuges ---------------------------------------------------------------------------------------------------
// A park's mean cool-island intensity in words: positive is cooler than the streets around it.
function cooler(period) {
  if (!period) return "–";
  const v = period.mean;
  return v >= 0 ? t("refuges.cooler", { v: number(v) }) : t("refuges.warmer", { v: number(-v) });
}

async function refreshRefuges() {
  const r = await get("api/v1/heat/cool-refuges");
  const ranked = r.parks.filter((p) => p.day || p.night).slice(0, 8);
  const first = r.days[0];
  const last = r.days[r.days.length - 1];
  fill("env-refuges",
    el("p", { class: "muted", textContent: t("refuges.intro", { basis: t(`refuges.basis.${r.basis}`) })
      + (first ? `, ${dayLabel(first)}${last !== first ? ` – ${dayLabel(last)}` : ""}` : "") }),
    ranked.length
      ? el("ol", { class: "refuges" }, ...ranked.map((p) => el("li", { dataset: { zone: p.zone } },
        el("span", { class: "name", textContent: p.name }),
        el("span", { class: "num", textContent: t("refuges.day", { v: cooler(p.day) }) }),
        el("span", { class: "num muted", textContent: t("refuges.night", { v: cooler(p.night) }) }))))
      : empty(t("refuges.none")),
    el("p", {}, el("a", { href: "api/v1/heat/cool-refuges?format=csv", download: "cool-refuges.csv",
                          textContent: t("refuges.csv") })));
}

// rivers and rain ------------------------------------------------------------------------------------------------
function levelBar(g) {
  const th = g.thresholds;
  const top = Math.max(...[th.red, th.orange, th.yellow, g.level].filter((v) => v !== null)) * 1.15 || 1;
  const pct = (v) => `${Math.max(0, Math.min(100, (v / top) * 100))}%`;
  const ticks = ["yellow", "orange", "red"].filter((k) => th[k] !== null).map((k) =>
    el("span", { class: `tick ${k}`, style: `left:${pct(th[k])}`,
                 title: `${t(`evidence.height.${k}`)} ${number(th[k])} m` }));
  const colour = CLASS_COLOURS[g.class_name] ?? "#888";
  return el("div", { class: "bar", role: "img",
                     "aria-label": `${number(g.level)} m, ${g.class_name ? t(`rivers.class.${g.class_name}`)
                       : t("rivers.no_data")}` },
    g.level !== null ? el("span", { class: "fill", style: `width:${pct(g.level)};background:${colour}` }) : null,
    ...ticks);
}

async function refreshRivers() {
  const r = await get("api/v1/flood/rivers");
  const gauges = r.rivers.map((g) => el("div", { class: "gauge", dataset: { eui: g.eui, class: g.class_name ?? "" } },
    el("div", { class: "gauge-head" },
      el("a", { class: "name", href: `#/device/${encodeURIComponent(g.eui)}`, textContent: g.name }),
      el("span", { class: "num", textContent: g.level === null ? t("rivers.no_data") : `${number(g.level)} m` }),
      el("span", { class: `num${g.rising ? " over" : " muted"}`,
                   textContent: g.rise_1h_m_per_h === null ? "" : `${g.rise_1h_m_per_h >= 0 ? "+" : ""}`
                     + `${number(g.rise_1h_m_per_h)} m/h`, title: t("rivers.rise_title") }),
      g.stale ? el("span", { class: "stale", textContent: g.time ? t("rivers.since", { time: localTime(g.time) })
        : t("rivers.silent") }) : null),
    levelBar(g)));
  const rain = r.rain_gauges.length ? el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col", textContent: t("rivers.rain_mm") }),
      ...r.windows_h.map((h) => el("th", { scope: "col", class: "num", textContent: `${h} h` })))),
    el("tbody", {}, ...r.rain_gauges.map((g) => el("tr", { dataset: { eui: g.eui } },
      el("th", { scope: "row", textContent: g.name }),
      ...r.windows_h.map((h) => el("td", { class: `num ${g.tiers[`${h}h`] !== "none" ? "over" : ""}`,
                                           textContent: number(g.accumulations_mm[`${h}h`]),
                                           title: t(`rivers.tier.${g.tiers[`${h}h`]}`) })))))) : null;
  fill("env-rivers", ...(gauges.length ? gauges : [empty(t("rivers.none"))]), rain);
}

// museum ---------------------------------------------------------------------------------------------------------
async function refreshMuseum() {
  const r = await get("api/v1/museum/rooms");
  if (!r.rooms.length) { fill("env-museum", empty(t("museum.none"))); return; }
  fill("env-museum", el("table", {},
    el("caption", { textContent: t("museum.caption", { month: r.month }) }),
    head("museum.col.room", "museum.col.class", "museum.col.in_band", "museum.col.breaches", "museum.col.mould"),
    el("tbody", {}, ...r.rooms.map((room) => el("tr", { dataset: { zone: room.room } },
      el("th", { scope: "row", textContent: room.name || room.room }),
      el("td", { textContent: room.climate_class ?? "" }),
      el("td", { class: `num ${room.share_in_band_both !== null && room.share_in_band_both < 0.95 ? "over" : ""}`,
                 textContent: percent(room.share_in_band_both),
                 title: t("museum.in_band_title", { t: percent(room.share_in_band_t),
                                                    rh: percent(room.share_in_band_rh) }) }),
      el("td", { class: `num ${room.breaches ? "over" : ""}`, textContent: String(room.breaches ?? "") }),
      el("td", { class: "num", textContent: room.mould_risk_hours ? `${number(room.mould_risk_hours)} h` : "–" }))))));
}

// water consumption: the open aggregates of the households' meters ----------------------------------------------
async function refreshWater() {
  const r = await get("api/v1/aggregates/water-consumption", { step: "1d" });
  const day = r.last_day_served;
  const cells = r.cells.filter((c) => c.period === day);
  if (!cells.length) { fill("env-water", empty(t("water.none"))); return; }
  const suppressed = (c) => {
    const key = `water.suppressed.${c.reason}`;
    return t(key) === key ? t("water.suppressed", { why: c.reason ?? c.status }) : t(key);
  };
  const rows = cells.map((c) => el("tr", { dataset: { zone: c.zone ?? "city", status: c.status } },
    el("th", { scope: "row", textContent: c.zone === null ? t("water.city") : c.name || c.zone }),
    c.status === "published"
      ? el("td", { class: "num", textContent: `${number(c.volume_m3)} m³`,
                   title: t("water.per_meter", { l: number(c.mean_per_meter_day_m3 * 1000) }) })
      : el("td", { class: "muted", textContent: suppressed(c) }),
    el("td", { class: "num muted", textContent: c.meters ? t("water.meters", { n: integer(c.meters) }) : "" })));
  fill("env-water", el("table", {},
    el("caption", { textContent: t("water.caption", { day: dayLabel(day, { dateStyle: "medium" }),
                                                      n: r.rules.min_meters,
                                                      share: percent(r.rules.dominance_share, 0) }) }),
    el("tbody", {}, ...rows)));
}

// loop -----------------------------------------------------------------------------------------------------------
const PANELS = [["env-air", refreshAir], ["env-heat", refreshHeat], ["env-refuges", refreshRefuges],
  ["env-rivers", refreshRivers], ["env-museum", refreshMuseum], ["env-water", refreshWater]];

run(PANELS, REFRESH_MS);
