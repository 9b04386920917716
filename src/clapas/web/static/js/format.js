// Display helpers: UCUM units as people read them, numbers, times — in the dashboard's language (i18n.js), so that
// a French page writes "1 234,5" and "6 déc. 2026, 14:05", an English one "1,234.5" and "Dec 6, 2026, 2:05 PM".

import { language } from "./i18n.js";

const UNITS = {
  Cel: "°C", m3: "m³", "ug/m3": "µg/m³", "mg/m3": "mg/m³", "{count}": "", "1": "", deg: "°",
};

// Intl formatters, made once per kind and options: building one is far dearer than formatting with it (a table of
// 50 devices and a hundred alerts asks thousands of numbers and times: ~0.1 s of the first view when made per call)
const formatters = new Map();
function formatter(Kind, options) {
  const id = `${Kind.name} ${JSON.stringify(options)}`;
  if (!formatters.has(id)) formatters.set(id, new Kind(language(), options));
  return formatters.get(id);
}

export function unit(ucum) {
  return ucum in UNITS ? UNITS[ucum] : ucum;
}

export function number(v, digits = null) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const abs = Math.abs(v);
  const max = digits ?? (abs >= 100 ? 1 : abs >= 1 ? 2 : 3);
  return formatter(Intl.NumberFormat, { maximumFractionDigits: max }).format(v);
}

export function integer(v) {
  return v === null || v === undefined ? "–" : formatter(Intl.NumberFormat, {}).format(Math.round(v));
}

// a share (0.953) as a percentage in the locale ("95,3 %" in French)
export function percent(share, digits = 1) {
  if (share === null || share === undefined) return "–";
  return formatter(Intl.NumberFormat, { style: "percent", maximumFractionDigits: digits }).format(share);
}

export function withUnit(v, ucum) {
  const u = unit(ucum);
  return u ? `${number(v)} ${u}` : number(v);
}

// "air.temperature" → "temperature", "battery" → "battery"
export function shortKey(key) {
  const i = key.indexOf(".");
  return i < 0 ? key : key.slice(i + 1).replace("_", ".");
}

// "3 min ago" / "il y a 3 min"
export function ago(iso, now = Date.now()) {
  if (!iso) return relative(null);
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return relative(s);
}

function relative(s) {
  if (s === null) return language() === "fr" ? "jamais" : "never";
  const rtf = formatter(Intl.RelativeTimeFormat, { numeric: "always", style: "short" });
  if (s < 60) return rtf.format(-s, "second");
  if (s < 3600) return rtf.format(-Math.round(s / 60), "minute");
  if (s < 86400 * 2) return rtf.format(-Math.round(s / 3600), "hour");
  return rtf.format(-Math.round(s / 86400), "day");
}

export function localTime(iso) {
  return iso ? formatter(Intl.DateTimeFormat, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso)) : "";
}

export function clockTime(d = new Date()) {
  return d.toLocaleTimeString(language());
}

// a local day "2026-07-02" as "jeu. 2" / "Thu 2" (options: Intl.DateTimeFormat's)
export function day(iso, options = { weekday: "short", day: "numeric" }) {
  return iso ? formatter(Intl.DateTimeFormat, options).format(new Date(`${iso}T12:00:00`)) : "";
}

export function bytes(n) {
  return n < 1024 ? `${integer(n)} B` : `${number(n / 1024, 1)} KiB`;
}
