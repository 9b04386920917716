// The environment panels: the day's ATMO index per zone, heatwave status, cool refuges, river levels and rain,
// museum rooms' conformity, the households' water consumption per district (open aggregates). Each panel reads one report of the API and fails on its own (a message in the panel).

import { get } from "./api.js";
import { el } from "./dom.js";
import { localTime, number } from "./format.js";
import { empty, fill, run } from "./panels.js";

const REFRESH_MS = 60000; // reports change by the hour: a minute is plenty

const HEAT_STATES = {
  none: "no heat episode",
  heat_peak: "heat peak",
  heatwave: "heatwave conditions met",
  extreme: "extreme heatwave",
  unavailable: "not enough data",
};
const BASIS = {
  heatwave: "during the current or last heatwave",
  hot_days: "over the last hot days",
  recent_days: "over the last days (no heat episode)",
};
// Vigicrues colours of a river level's class
const CLASS_COLOURS = { green: "#2e7d32", yellow: "#f2c500", orange: "#f57c00", red: "#d32f2f" };

const deg = (v) => (v === null || v === undefined ? "–" : `${number(v)} °C`);
const dayLabel = (iso) => new Date(`${iso}T12:00:00`).toLocaleDateString(undefined,
  { weekday: "short", day: "numeric" });
// the state in a table cell: short words, the full wording in the title
const SHORT_STATES = { none: "–", heat_peak: "peak", heatwave: "heatwave", extreme: "extreme", unavailable: "no data" };

// air ------------------------------------------------------------------------------------------------------------
function atmoChip(index, label, colour, size = "") {
  // the two darkest ATMO colours need light text
  return el("span", { class: `atmo ${size}${index >= 5 ? " dark" : ""}${index ? "" : " na"}`, textContent: label,
                      style: colour ? `background:${colour}` : "" });
}

async function refreshAir() {
  const r = await get("api/v1/air/atmo");
  if (!r.zones.length) { fill("env-air", empty("No air-quality sensor reported on these days.")); return; }
  const rows = r.zones.map((z) => el("tr", { dataset: { zone: z.zone, index: z.index ?? "" } },
    el("th", { scope: "row", textContent: z.name }),
    el("td", {}, atmoChip(z.index, z.label, z.colour)),
    el("td", { class: "muted", textContent: z.drivers.length ? z.drivers.join(", ").replace("_", ".")
      : (z.missing.length ? `missing ${z.missing.join(", ")}` : "") }),
    el("td", { class: "num", textContent: `${z.sensors} · ${Math.round(z.completeness * 100)} %`,
               title: "sensors · share of the day's hours with valid data" }),
    el("td", {}, atmoChip(z.previous.index, z.previous.label, z.previous.colour, "small"))));
  fill("env-air",
    el("table", {},
      el("caption", { textContent: `${dayLabel(r.day)}, beside yesterday` }),
      el("thead", {}, el("tr", {}, ...["Zone", "Today", "Cause", "Data", "Yesterday"].map((h) =>
        el("th", { scope: "col", textContent: h })))),
      el("tbody", {}, ...rows)),
    el("p", { class: "note", textContent: r.statement }));
}

// heat -----------------------------------------------------------------------------------------------------------
async function refreshHeat() {
  const r = await get("api/v1/heat/status", { days: 5 });
  if (!r.stations.length) { fill("env-heat", empty("No reference weather station (zone of kind rural).")); return; }
  const th = r.thresholds;
  const over = (v, t) => (v !== null && v >= t ? "over" : "");
  const tables = r.stations.map((s) => el("table", { dataset: { station: s.eui } },
    el("caption", { textContent: s.name }),
    el("thead", {}, el("tr", {}, ...["Day", "Tn", "Tx", "IBMn", "IBMx", "State"].map((h) =>
      el("th", { scope: "col", textContent: h })))),
    el("tbody", {}, ...s.days.map((d) => el("tr", { dataset: { state: d.state } },
      el("td", { textContent: dayLabel(d.day) }),
      el("td", { class: `num ${over(d.tn, th.ibmn)}`, textContent: deg(d.tn) }),
      el("td", { class: `num ${over(d.tx, th.ibmx)}`, textContent: deg(d.tx) }),
      el("td", { class: `num ${over(d.ibmn, th.ibmn)}`, textContent: deg(d.ibmn) }),
      el("td", { class: `num ${over(d.ibmx, th.ibmx)}`, textContent: deg(d.ibmx) }),
      el("td", {}, el("span", { class: `heat ${d.state}`, textContent: SHORT_STATES[d.state] ?? d.state,
                                title: HEAT_STATES[d.state] ?? d.state })))))));
  const latest = r.latest_available;
  fill("env-heat",
    el("p", { class: "headline" }, "Today: ",
      el("span", { class: `heat ${r.state}`, id: "heat-today", textContent: HEAT_STATES[r.state] ?? r.state }),
      latest && latest.day !== r.today
        ? el("span", { class: "muted", textContent: ` · ${dayLabel(latest.day)}: ${HEAT_STATES[latest.state]}` })
        : null),
    el("p", { class: "muted", textContent: `${th.name} (${th.department}) thresholds: IBMn ≥ ${th.ibmn} °C and `
      + `IBMx ≥ ${th.ibmx} °C (${th.ibm_days}-day means)` }),
    ...tables,
    el("p", { class: "note", textContent: r.statement }));
}

// cool refuges ---------------------------------------------------------------------------------------------------
// A park's mean cool-island intensity in words: positive is cooler than the streets around it.
function cooler(period) {
  if (!period) return "–";
  const v = period.mean;
  return v >= 0 ? `${number(v)} °C cooler` : `${number(-v)} °C warmer`;
}

async function refreshRefuges() {
  const r = await get("api/v1/heat/cool-refuges");
  const ranked = r.parks.filter((p) => p.day || p.night).slice(0, 8);
  const first = r.days[0];
  const last = r.days[r.days.length - 1];
  fill("env-refuges",
    el("p", { class: "muted", textContent: `How much cooler each park is than its district's streets (cool-island `
      + `intensity, surroundings − park) ${BASIS[r.basis] ?? ""}`
      + (first ? `, ${dayLabel(first)}${last !== first ? ` – ${dayLabel(last)}` : ""}` : "") }),
    ranked.length
      ? el("ol", { class: "refuges" }, ...ranked.map((p) => el("li", { dataset: { zone: p.zone } },
        el("span", { class: "name", textContent: p.name }),
        el("span", { class: "num", textContent: `day ${cooler(p.day)}` }),
        el("span", { class: "num muted", textContent: `night ${cooler(p.night)}` }))))
      : empty("No park has a station and surrounding street stations with data."),
    el("p", {}, el("a", { href: "api/v1/heat/cool-refuges?format=csv", download: "cool-refuges.csv",
                          textContent: "Download the ranking (CSV)" })));
}

// rivers and rain ------------------------------------------------------------------------------------------------
function levelBar(g) {
  const t = g.thresholds;
  const top = Math.max(...[t.red, t.orange, t.yellow, g.level].filter((v) => v !== null)) * 1.15 || 1;
  const pct = (v) => `${Math.max(0, Math.min(100, (v / top) * 100))}%`;
  const ticks = ["yellow", "orange", "red"].filter((k) => t[k] !== null).map((k) =>
    el("span", { class: `tick ${k}`, style: `left:${pct(t[k])}`, title: `${k} ${t[k]} m` }));
  const colour = CLASS_COLOURS[g.class_name] ?? "#888";
  return el("div", { class: "bar", role: "img",
                     "aria-label": `${number(g.level)} m, ${g.class_name ?? "no data"}` },
    g.level !== null ? el("span", { class: "fill", style: `width:${pct(g.level)};background:${colour}` }) : null,
    ...ticks);
}

async function refreshRivers() {
  const r = await get("api/v1/flood/rivers");
  const gauges = r.rivers.map((g) => el("div", { class: "gauge", dataset: { eui: g.eui, class: g.class_name ?? "" } },
    el("div", { class: "gauge-head" },
      el("span", { class: "name", textContent: g.name }),
      el("span", { class: "num", textContent: g.level === null ? "no data" : `${number(g.level)} m` }),
      el("span", { class: `num${g.rising ? " over" : " muted"}`,
                   textContent: g.rise_1h_m_per_h === null ? "" : `${g.rise_1h_m_per_h >= 0 ? "+" : ""}`
                     + `${number(g.rise_1h_m_per_h)} m/h`, title: "rise over the last hour" }),
      g.stale ? el("span", { class: "stale", textContent: g.time ? `since ${localTime(g.time)}` : "silent" }) : null),
    levelBar(g)));
  const rain = r.rain_gauges.length ? el("table", {},
    el("thead", {}, el("tr", {}, el("th", { scope: "col", textContent: "Rain (mm)" }),
      ...r.windows_h.map((h) => el("th", { scope: "col", class: "num", textContent: `${h} h` })))),
    el("tbody", {}, ...r.rain_gauges.map((g) => el("tr", { dataset: { eui: g.eui } },
      el("th", { scope: "row", textContent: g.name }),
      ...r.windows_h.map((h) => el("td", { class: `num ${g.tiers[`${h}h`] !== "none" ? "over" : ""}`,
                                           textContent: number(g.accumulations_mm[`${h}h`]),
                                           title: g.tiers[`${h}h`] })))))) : null;
  fill("env-rivers", ...(gauges.length ? gauges : [empty("No river gauge.")]), rain);
}

// museum ---------------------------------------------------------------------------------------------------------
const pct = (share) => (share === null || share === undefined ? "–" : `${Math.round(share * 1000) / 10} %`);

async function refreshMuseum() {
  const r = await get("api/v1/museum/rooms");
  if (!r.rooms.length) { fill("env-museum", empty("No museum room.")); return; }
  fill("env-museum", el("table", {},
    el("caption", { textContent: `${r.month}, share of the time within the room's class` }),
    el("thead", {}, el("tr", {}, ...["Room", "Class", "In band", "Breaches", "Mould risk"].map((h) =>
      el("th", { scope: "col", textContent: h })))),
    el("tbody", {}, ...r.rooms.map((room) => el("tr", { dataset: { zone: room.room } },
      el("th", { scope: "row", textContent: room.name || room.room }),
      el("td", { textContent: room.climate_class ?? "" }),
      el("td", { class: `num ${room.share_in_band_both !== null && room.share_in_band_both < 0.95 ? "over" : ""}`,
                 textContent: pct(room.share_in_band_both),
                 title: `temperature ${pct(room.share_in_band_t)} · humidity ${pct(room.share_in_band_rh)}` }),
      el("td", { class: `num ${room.breaches ? "over" : ""}`, textContent: String(room.breaches ?? "") }),
      el("td", { class: "num", textContent: room.mould_risk_hours ? `${number(room.mould_risk_hours)} h` : "–" }))))));
}

// water consumption: the open aggregates of the households' meters ----------------------------------------------
const SUPPRESSED = {
  min_meters: "not published: too few meters",
  dominance: "not published: one meter dominates",
  secondary: "not published: would reveal a withheld zone",
};

async function refreshWater() {
  const r = await get("api/v1/aggregates/water-consumption", { step: "1d" });
  const day = r.last_day_served;
  const cells = r.cells.filter((c) => c.period === day);
  if (!cells.length) { fill("env-water", empty("No meter reported on the last day.")); return; }
  const rows = cells.map((c) => el("tr", { dataset: { zone: c.zone ?? "city", status: c.status } },
    el("th", { scope: "row", textContent: c.zone === null ? "Whole city" : c.name || c.zone }),
    c.status === "published"
      ? el("td", { class: "num", textContent: `${number(c.volume_m3)} m³`,
                   title: `${number(c.mean_per_meter_day_m3 * 1000)} L per meter and day` })
      : el("td", { class: "muted", textContent: SUPPRESSED[c.reason] ?? `not published (${c.reason ?? c.status})` }),
    el("td", { class: "num muted", textContent: c.meters ? `${c.meters} meters` : "" })));
  fill("env-water", el("table", {},
    el("caption", { textContent: `${new Date(`${day}T12:00:00`).toLocaleDateString()}: consumption per zone, `
      + `published for at least ${r.rules.min_meters} meters, none over ${Math.round(r.rules.dominance_share * 100)} %` }),
    el("tbody", {}, ...rows)));
}

// loop -----------------------------------------------------------------------------------------------------------
const PANELS = [["env-air", refreshAir], ["env-heat", refreshHeat], ["env-refuges", refreshRefuges],
  ["env-rivers", refreshRivers], ["env-museum", refreshMuseum], ["env-water", refreshWater]];

run(PANELS, REFRESH_MS);
