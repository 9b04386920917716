// The maps' data (js/map.js draws it): one read of the API shared by every map of the page — the dashboard's
// settings, the zones (read again only when the key changes), the devices the caller may see, the active alerts and
// the bike-share stations' state now (when stations are among the devices) — again every REFRESH_MS, and at once
// when the key changes. Started on import, when the page has a map, so that it does not wait for the text catalogs.

import { get, key, refused } from "./api.js";

const REFRESH_MS = 30000;
const ALERT_PAGE = 1000; // the alerts route's largest page
const MAX_ALERT_PAGES = 10;
const SILENT_RULE = "health.silent";

let configRead = null;
let shared = null; // { key, at, promise }
let zonesRead = null; // { key, promise }: zones change with the registry, not every refresh

function config() {
  configRead ??= get("api/v1/web/config").catch(() => ({ tile_url: "" }));
  return configRead;
}

function zones(k) {
  if (!zonesRead || zonesRead.key !== k) {
    zonesRead = { key: k, promise: get("api/v1/zones").then((fc) => fc.features ?? []) };
    zonesRead.promise.catch(() => { zonesRead = null; });
  }
  return zonesRead.promise;
}

async function activeAlerts() {
  const out = [];
  for (let page = 0; page < MAX_ALERT_PAGES; page += 1) {
    const { alerts } = await get("api/v1/alerts", { state: "active", limit: ALERT_PAGE, offset: page * ALERT_PAGE });
    out.push(...alerts);
    if (alerts.length < ALERT_PAGE) break;
  }
  return out;
}

async function readAll() {
  const k = key();
  const [cfg, features, listing, alerts] = await Promise.all([
    config(), zones(k), get("api/v1/devices", { limit: 10000 }),
    activeAlerts().catch((e) => { if (refused(e)) return null; throw e; }),
  ]);
  // a station's state comes from its polls, not from its alerts: read only when there are stations to colour
  const stations = listing.devices.some((d) => d.kind === "bike_station")
    ? await get("api/v1/mobility/stations").then((r) => r.stations).catch(() => null) : null;
  return { config: cfg, features, devices: listing.devices, withheld: listing.withheld ?? [], alerts, stations };
}

export function load(force = false) {
  const k = key();
  if (force || !shared || shared.key !== k || Date.now() - shared.at >= REFRESH_MS) {
    shared = { key: k, at: Date.now(), promise: readAll() };
    const mine = shared;
    mine.promise.catch(() => { if (shared === mine) shared = null; }); // asked again at the next tick
  }
  return shared.promise;
}

// A device's state from the active alerts about it: any alert but silence first, then silence, else ok.
export function deviceStates(alerts) {
  const states = new Map();
  for (const a of alerts ?? []) {
    if (a.subject_kind !== "device" || !a.subject) continue; // withheld alerts name no device
    const s = a.rule === SILENT_RULE ? "silent" : "alert";
    if (s === "alert" || !states.has(a.subject)) states.set(a.subject, s);
  }
  return states;
}

// the first page shown (the location's hash) has a map: the overview's, or a use page's (js/usepages.js)
const firstPage = location.hash.replace(/^#\/?/, "").split("/")[0] || "overview";
const first = document.querySelector(`main > [data-page="${CSS.escape(firstPage)}"]`);
if (first && (first.dataset.use || first.querySelector("[data-map-use]"))) load();
