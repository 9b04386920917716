// The mobility panels (issue 12): bike share (per GBFS system: its stations now by state, the worst empty shares of
// the last day, the feed's status), the stations most often empty and most often full over the last day or 7 days,
// and counters (the list, the selected counter's hourly or daily counts charted with the vendored uPlot, its TMJA
// and TMJO of the year, its hourly and weekly profiles of the year with the morning and evening peak hours). Each panel reads the API's /api/v1/mobility/ routes and fails
// on its own (a message in the panel), like the environment panels.

import { get } from "./api.js";
import { clear, plot } from "./chart.js";
import { el } from "./dom.js";
import { ago, number, percent } from "./format.js";
import { language, t } from "./i18n.js";
import { empty, failed, fill, run } from "./panels.js";

const REFRESH_MS = 60000; // the demo polls its feed each minute, counters report by the hour
const MOB = "api/v1/mobility/";
const STATES = ["empty", "full", "ok", "closed", "unknown"];
const WORST = 8; // stations listed by empty share, and in each ranking
const RANK_SPANS = { "1d": 86400e3, "7d": 7 * 86400e3 };
const SPANS = { "1h": 7 * 86400e3, "1d": 90 * 86400e3 }; // hourly counts over a week, daily over 90 days
const DIRECTIONS = [["total", "#0b5cad", 2], ["in", "#2e7d32", 1], ["out", "#c2410c", 1]];
const $ = (id) => document.getElementById(id);
const state = { counter: "", resolution: "1h", span: "1d" };

const pct = (share) => percent(share);
// column keys: "#key" is a number column
const head = (...keys) => el("thead", {}, el("tr", {}, ...keys.map((h) =>
  el("th", { scope: "col", class: h.startsWith("#") ? "num" : "", textContent: t(h.replace("#", "")) }))));

// bike share -----------------------------------------------------------------------------------------------------
function feed(s) {
  if (!s) return el("p", { class: "muted", textContent: t("bikes.no_poll") });
  return el("p", { class: `feed ${s.status}`, dataset: { status: s.status } }, t("bikes.feed"),
    el("span", { class: s.status === "ok" ? "" : "over", textContent: t(`bikes.status.${s.status}`) }),
    el("span", { class: "muted", textContent: ` · ${t("bikes.polls", { ago: ago(s.last_poll), failed: s.failed_polls,
                                                                        polls: s.polls })}`
      + (s.failing_in_a_row ? ` ${t("bikes.in_a_row", { n: s.failing_in_a_row })}` : "")
      + (s.feed_age_s === null || s.feed_age_s === undefined ? ""
        : ` · ${t("bikes.age", { s: Math.round(s.feed_age_s) })}`) }));
}

function system(name, stations, status, kpis) {
  const counts = Object.fromEntries(STATES.map((k) => [k, stations.filter((s) => s.state === k).length]));
  const worst = kpis.filter((k) => k.empty_share).slice(0, WORST);
  return el("div", { class: "system", dataset: { system: name } },
    el("table", {},
      el("caption", { textContent: t("bikes.now", { name, n: stations.length }) }),
      head(...STATES.map((k) => `#bikes.state.${k}`)),
      el("tbody", {}, el("tr", {}, ...STATES.map((k) => el("td", {
        class: `num ${(k === "empty" || k === "full") && counts[k] ? "over" : ""}`, dataset: { state: k },
        textContent: String(counts[k]) }))))),
    feed(status),
    worst.length ? el("table", { class: "worst" },
      el("caption", { textContent: t("bikes.worst") }),
      head("bikes.col.station", "#bikes.col.empty", "#bikes.col.peak", "#bikes.col.violations"),
      el("tbody", {}, ...worst.map((k) => el("tr", { dataset: { eui: k.eui } },
        el("th", { scope: "row", textContent: k.name || k.eui }),
        el("td", { class: "num", textContent: pct(k.empty_share) }),
        el("td", { class: "num", textContent: pct(k.empty_share_peak) }),
        el("td", { class: `num ${k.violations ? "over" : ""}`, textContent: String(k.violations) })))))
      : empty(t("bikes.none_empty")));
}

async function refreshBikes() {
  const [st, sy, kp] = await Promise.all([get(`${MOB}stations`), get(`${MOB}systems`), get(`${MOB}stations/kpis`)]);
  const names = [...new Set([...sy.systems.map((s) => s.system), ...st.stations.map((s) => s.system)])];
  if (!names.length) { fill("mob-bikes", empty(t("bikes.none"))); return; }
  fill("mob-bikes", ...names.map((n) => system(n, st.stations.filter((s) => s.system === n),
    sy.systems.find((s) => s.system === n), kp.stations.filter((k) => k.system === n))));
}

// rankings ---------------------------------------------------------------------------------------------------------
// the stations with some time empty (or full) over the span, worst first (the API's order, and its full_ranking)
function ranking(kind, rows) {
  const share = `${kind}_share`;
  const shown = rows.filter((k) => k[share]).slice(0, WORST);
  if (!shown.length) return el("div", { class: "ranking", dataset: { ranking: kind } }, empty(t(`ranking.none_${kind}`)));
  return el("table", { class: "ranking", dataset: { ranking: kind } },
    el("caption", { textContent: t(`ranking.${kind}`) }),
    head("ranking.col.station", `#ranking.col.${kind}`, "#ranking.col.episodes"),
    el("tbody", {}, ...shown.map((k) => el("tr", { dataset: { eui: k.eui, share: String(k[share]),
                                                             episodes: String(k[`${kind}_episodes`]) } },
      el("th", { scope: "row" }, el("a", { href: `#/device/${encodeURIComponent(k.eui)}`, textContent: k.name || k.eui })),
      el("td", { class: "num", textContent: pct(k[share]) }),
      el("td", { class: "num", textContent: String(k[`${kind}_episodes`]) })))));
}

async function refreshRanking() {
  const end = Date.now();
  const kp = await get(`${MOB}stations/kpis`, { start: new Date(end - RANK_SPANS[state.span]).toISOString(),
                                                end: new Date(end).toISOString() });
  const span = el("select", { id: "mob-span" }, ...Object.keys(RANK_SPANS).map((v) =>
    el("option", { value: v, textContent: t(`ranking.span.${v}`), selected: v === state.span })));
  span.addEventListener("change", () => {
    state.span = span.value;
    refreshRanking().catch((e) => failed("mob-rank", e));
  });
  const byEui = Object.fromEntries(kp.stations.map((k) => [k.eui, k]));
  // the period the API answered for, so that a reader (a test) can ask for the same figures
  const box = el("div", { class: "rankings", dataset: { start: kp.start, end: kp.end, span: state.span } },
    ranking("empty", kp.stations), ranking("full", kp.full_ranking.map((e) => byEui[e])));
  fill("mob-rank", el("form", { class: "filters", onsubmit: () => false }, el("label", {}, t("ranking.span"), span)),
    kp.stations.length ? box : empty(t("bikes.none")));
}

// counters -------------------------------------------------------------------------------------------------------
// x: an hour's start, or a local day's midnight; a missing slot has no count (null): a gap, never 0
function columns(series, dirs) {
  const x = series.directions[dirs[0][0]].map((r) => Date.parse(r.start ?? `${r.day}T00:00:00`) / 1000);
  return [x, ...dirs.map(([d]) => series.directions[d].map((r) => r.count))];
}

function draw(box, series) {
  const dirs = DIRECTIONS.filter(([d]) => series.directions[d]?.length);
  if (!dirs.length) {
    clear(box);
    box.replaceChildren(empty(t("counters.no_count")));
    return;
  }
  const [x, ...values] = columns(series, dirs);
  plot(box, { x, yLabel: t(series.resolution === "1d" ? "counters.per_day" : "counters.per_hour"),
              series: dirs.map(([d, stroke, width], i) => ({ label: t(`counters.dir.${d}`), stroke, width,
                                                             values: values[i] })) },
       `${series.eui}|${series.resolution}|${dirs.length}`, 260);
}

const tr = t; // figures() names its total direction `t`

function figures(obs) {
  const t = obs.directions.total ?? Object.values(obs.directions)[0];
  if (!t) return empty(tr("counters.no_year", { year: obs.year }));
  return el("dl", { class: "counts figures", dataset: { year: obs.year } },
    el("div", {}, el("dt", { textContent: `TMJA ${obs.year}`, title: tr("counters.tmja_title") }),
      el("dd", { dataset: { figure: "tmja" }, textContent: number(t.tmja) }),
      el("dd", { class: "muted", textContent: t.tmja === null ? tr("counters.no_month")
        : tr("counters.tmja_used", { days: t.tmja_days_used, months: t.tmja_months.length }) })),
    el("div", {}, el("dt", { textContent: "TMJO", title: tr("counters.tmjo_title") }),
      el("dd", { dataset: { figure: "tmjo" }, textContent: number(t.tmjo) }),
      el("dd", { class: "muted", textContent: tr("counters.tmjo_used", { days: t.tmjo_days_used }) })));
}

// a year's profiles: the mean count per local hour and per weekday (Monday = 0), per direction, charted without time
const hourName = (h) => `${String(h).padStart(2, "0")}:00`;
// 2024-01-01 was a Monday
const dayName = (w) => new Date(2024, 0, 1 + w).toLocaleDateString(language(), { weekday: "short" });
const peak = (h) => (h == null ? "–" : `${hourName(h)}–${hourName(h + 1)}`);

function profile(box, obs, key, n, xLabel, xValue, yLabel) {
  const dirs = DIRECTIONS.filter(([d]) => Object.keys(obs.directions[d]?.[key] ?? {}).length);
  const x = [...Array(n).keys()];
  plot(box, { time: false, x, xLabel, xValue, yLabel, series: dirs.map(([d, stroke, width]) => ({
    label: t(`counters.dir.${d}`), stroke, width, points: { show: true },
    values: x.map((i) => obs.directions[d][key][i] ?? null) })) }, `${obs.eui}|${key}|${dirs.length}`, 220);
}

function profiles(obs) {
  const total = obs.directions.total ?? Object.values(obs.directions)[0];
  const [hourly, weekly, peaks] = [$("mob-hourly"), $("mob-weekly"), $("mob-peaks")];
  $("mob-hourly-title").textContent = t("counters.hourly", { year: obs.year });
  $("mob-weekly-title").textContent = t("counters.weekly", { year: obs.year });
  hourly.setAttribute("aria-label", t("counters.hourly", { year: obs.year }));
  weekly.setAttribute("aria-label", t("counters.weekly", { year: obs.year }));
  if (!total || !Object.keys(total.hourly_profile).length) {
    clear(hourly);
    clear(weekly);
    peaks.textContent = t("counters.no_profile", { year: obs.year });
    return;
  }
  const { morning, evening } = total.peak_hours;
  Object.assign(peaks.dataset, { morning: String(morning), evening: String(evening) });
  peaks.textContent = t("counters.peaks", { morning: peak(morning), evening: peak(evening) });
  profile(hourly, obs, "hourly_profile", 24, t("counters.hour"), hourName, t("counters.per_hour"));
  profile(weekly, obs, "weekly_profile", 7, t("counters.weekday"), dayName, t("counters.per_day"));
}

async function refreshSelected() {
  const eui = state.counter;
  if (!eui) return;
  const now = Date.now();
  const [series, obs] = await Promise.all([
    get(`${MOB}counters/${encodeURIComponent(eui)}/series`, {
      start: new Date(now - SPANS[state.resolution]).toISOString(), resolution: state.resolution }),
    get(`${MOB}counters/${encodeURIComponent(eui)}/observatory`, { year: new Date(now).getFullYear() }),
  ]);
  if (eui !== state.counter) return; // another counter was picked meanwhile
  draw($("mob-chart"), series);
  $("mob-figures").replaceChildren(figures(obs));
  profiles(obs);
}

function select(eui) {
  state.counter = eui;
  for (const b of $("mob-counters").querySelectorAll("button[data-eui]")) {
    b.setAttribute("aria-pressed", String(b.dataset.eui === eui));
  }
  refreshSelected().catch((e) => $("mob-figures").replaceChildren(
    el("p", { class: "err", textContent: t("common.unavailable", { message: e.message }) })));
}

async function refreshCounters() {
  const { counters } = await get(`${MOB}counters`);
  if (!counters.length) { fill("mob-counters", empty(t("counters.none"))); state.counter = ""; return; }
  if (!counters.some((c) => c.eui === state.counter)) state.counter = counters[0].eui;
  const res = el("select", { id: "mob-res" }, ...[["1h", "counters.res.1h"], ["1d", "counters.res.1d"]].map(([v, k]) =>
    el("option", { value: v, textContent: t(k), selected: v === state.resolution })));
  res.addEventListener("change", () => { state.resolution = res.value; select(state.counter); });
  const rows = counters.map((c) => el("tr", { dataset: { eui: c.eui } },
    el("th", { scope: "row" }, el("button", { type: "button", class: "link", dataset: { eui: c.eui },
                                              textContent: c.name || c.eui, onclick: () => select(c.eui) })),
    el("td", { textContent: t(c.kind === "traffic_counter" ? "counters.traffic" : "counters.bikes") }),
    el("td", { class: "muted", textContent: c.zone })));
  const chart = $("mob-chart") ?? el("div", { id: "mob-chart", class: "chart small", role: "img",
                                               "aria-label": t("counters.chart") });
  fill("mob-counters",
    el("div", { class: "scroll short" }, el("table", {}, head("counters.col.counter", "counters.col.kind",
      "counters.col.zone"), el("tbody", {}, ...rows))),
    el("form", { class: "filters", onsubmit: () => false }, el("label", {}, t("chart.resolution"), res)),
    chart,
    el("div", { id: "mob-figures" }, $("mob-figures")?.firstChild ?? empty(t("common.loading"))),
    $("mob-profiles") ?? el("div", { id: "mob-profiles" },
      el("h3", { id: "mob-hourly-title" }), el("p", { id: "mob-peaks", class: "peaks" }),
      el("div", { id: "mob-hourly", class: "chart small", role: "img" }),
      el("h3", { id: "mob-weekly-title" }), el("div", { id: "mob-weekly", class: "chart small", role: "img" })));
  select(state.counter);
}

// loop -----------------------------------------------------------------------------------------------------------
const PANELS = [["mob-bikes", refreshBikes], ["mob-rank", refreshRanking], ["mob-counters", refreshCounters]];

run(PANELS, REFRESH_MS);
