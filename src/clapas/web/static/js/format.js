// Display helpers: UCUM units as people read them, numbers, times.

const UNITS = {
  Cel: "°C", m3: "m³", "ug/m3": "µg/m³", "mg/m3": "mg/m³", "{count}": "", "1": "", deg: "°",
};

export function unit(ucum) {
  return ucum in UNITS ? UNITS[ucum] : ucum;
}

export function number(v) {
  if (v === null || v === undefined) return "–";
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 3;
  return v.toLocaleString(undefined, { maximumFractionDigits: digits });
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

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400 * 2) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

export function localTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function bytes(n) {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}
