// Maps of the city: its own zones (the registry's GeoJSON, /api/v1/zones) and its devices (their registry
// position, /api/v1/devices) coloured by state — an open alert, silent (an open health.silent alert), ok — drawn with
// the vendored Leaflet (global `L`) and no tile server unless the city sets `[web] tile_url` (/api/v1/web/config).
//
// Every element `[data-map-use]` gets a map once its page is shown (a map costs the page its SVG: one per page seen): its value is a use (water, heat, floods, air, museum, mobility, health)
// or "all", which keeps the devices of that use's kinds and the zones of its kinds (or holding its devices). A click
// on a device goes to `#/device/<eui>`, on a zone lists its devices and alerts. Bike-share stations are filled with
// their state now (empty, full, ok, closed, unknown: /api/v1/mobility/stations), outlined in red under an alert.
// Museum rooms and zones without a shape are listed beside the map instead of drawn.
//
// The map draws only what the API gives the caller: a device the charter withholds (a dwelling's meter for an
// anonymous visitor) comes without EUI or position, so it is never drawn, only counted per zone as the devices table
// counts it; an alert the caller may not read comes reduced to its rule, zone and times. All maps of a page share one
// read of the API (the anonymous rate limit), every REFRESH_MS, and at once when the key changes.

// first: the map's data is asked for before the catalogs of i18n.js (awaited on import) have arrived
import { deviceStates, load } from "./mapdata.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { shown, started } from "./router.js";

const TICK_MS = 2000; // how soon a typed key is noticed
const STATES = ["alert", "silent", "ok"];
const STATE_COLOURS = { alert: "#c62828", silent: "#6b7280", ok: "#2e7d32" };
const STATE_RADIUS = { alert: 8, silent: 6, ok: 5 };
const BIKE_STATES = ["empty", "full", "ok", "closed", "unknown"];
const BIKE_COLOURS = { empty: "#c2410c", full: "#7b1fa2", ok: "#2e7d32", closed: "#1b1f24", unknown: "#d1d5db" };
const ZONE_COLOURS = { district: "#57606a", dma: "#0b5cad", park: "#2e7d32", rural: "#827717",
                       catchment: "#00838f", museum: "#6a1b9a", museum_room: "#6a1b9a" };
const LISTED_ZONE_KINDS = new Set(["museum_room"]); // rooms: tiny or no shapes, listed rather than drawn
const FALLBACK_VIEW = { center: [43.6108, 3.8767], zoom: 12 }; // before any zone or device: Montpellier

// The device kinds and zone kinds of each use (domain-rules: one use per department; `health` is every device's).
export const USES = {
  water: { kinds: ["water_meter", "district_meter"], zones: ["dma", "district"] },
  heat: { kinds: ["weather_station"], zones: ["park", "rural", "district"] },
  floods: { kinds: ["water_level", "rain_gauge"], zones: ["catchment"] },
  air: { kinds: ["air_quality"], zones: ["district"] },
  museum: { kinds: ["indoor_climate"], zones: ["museum", "museum_room"] },
  mobility: { kinds: ["traffic_counter", "bike_counter", "bike_station"], zones: ["district"] },
  health: { kinds: null, zones: null },
  all: { kinds: null, zones: null },
};

export function useOfKind(kind) {
  return Object.entries(USES).find(([, u]) => u.kinds && u.kinds.includes(kind))?.[0] ?? "";
}

// A translated label, or the raw name when the catalog has none (a kind the city invented).
function label(k, raw) {
  const s = t(k);
  return s === k ? raw : s;
}
const kindLabel = (kind) => label(`map.kind.${kind}`, kind || "?");
const zoneKindLabel = (kind) => label(`map.zone_kind.${kind}`, kind || "");
const useLabel = (use) => label(`map.use.${use}`, use);

function zoneOfAlert(a) {
  return a.subject_kind === "zone" ? a.subject : a.zone;
}

// one map -----------------------------------------------------------------------------------------------
class CityMap {
  constructor(root) {
    this.root = root;
    this.use = USES[root.dataset.mapUse] ? root.dataset.mapUse : "all";
    this.data = null;
    this.fitted = false;
    this.selectedZone = null;
    root.dataset.mapState = "loading";
    root.classList.add("map");

    const n = this.use === "all" ? "" : `-${this.use}`;
    this.useSelect = el("select", { class: "map-use", "aria-label": t("map.filter.use") },
      el("option", { value: "", textContent: t("map.filter.all_uses") }));
    this.kindSelect = el("select", { class: "map-kind", "aria-label": t("map.filter.kind") },
      el("option", { value: "", textContent: t("map.filter.all_kinds") }));
    this.count = el("span", { class: "map-count muted", role: "status" });
    const filters = el("form", { class: "filters map-filters", role: "search", "aria-label": t("map.filter.label") },
      this.use === "all" ? el("label", {}, t("map.filter.use"), this.useSelect) : null,
      el("label", {}, t("map.filter.kind"), this.kindSelect), this.count);
    filters.addEventListener("submit", (e) => e.preventDefault());
    this.canvas = el("div", { class: "map-canvas", id: `map-canvas${n}-${CityMap.count}`, role: "region",
                              "aria-label": t("map.aria", { use: useLabel(this.use) }) });
    this.legend = el("ul", { class: "map-legend", "aria-label": t("map.legend.title") });
    this.note = el("p", { class: "map-note muted" });
    this.listed = el("div", { class: "map-listed" });
    this.details = el("div", { class: "map-details", "aria-live": "polite" });
    root.replaceChildren(filters, this.canvas, this.legend, this.note, this.listed, this.details);
    CityMap.count += 1;

    this.map = L.map(this.canvas, { center: FALLBACK_VIEW.center, zoom: FALLBACK_VIEW.zoom, maxZoom: 19 });
    this.zoneLayer = L.layerGroup().addTo(this.map);
    this.deviceLayer = L.layerGroup().addTo(this.map);
    this.tiles = null;
    this.useSelect.addEventListener("change", () => { this.kindSelect.value = ""; this.render(); });
    this.kindSelect.addEventListener("change", () => this.render());
    if (typeof ResizeObserver === "function") new ResizeObserver(() => this.shown()).observe(this.canvas);
  }

  visible() {
    return this.canvas.clientWidth > 0 && this.canvas.clientHeight > 0;
  }

  // After the page showing the map changes (hashchange) or the map's size does: Leaflet measures again.
  shown() {
    if (!this.visible()) return;
    this.map.invalidateSize();
    if (!this.fitted) this.fit();
  }

  currentUse() {
    return this.use === "all" ? (this.useSelect.value || "all") : this.use;
  }

  inUse(kind) {
    const kinds = USES[this.currentUse()].kinds;
    return kinds === null || kinds.includes(kind);
  }

  wantedKind(kind) {
    return this.inUse(kind) && (!this.kindSelect.value || this.kindSelect.value === kind);
  }

  setData(data) {
    this.data = data;
    this.states = deviceStates(data.alerts);
    this.bikes = new Map((data.stations ?? []).map((s) => [s.eui, s]));
    this.byZone = new Map();
    for (const d of data.devices) {
      if (!this.byZone.has(d.zone)) this.byZone.set(d.zone, []);
      this.byZone.get(d.zone).push(d);
    }
    this.alertsByZone = new Map();
    for (const a of data.alerts ?? []) {
      const z = zoneOfAlert(a);
      if (!this.alertsByZone.has(z)) this.alertsByZone.set(z, []);
      this.alertsByZone.get(z).push(a);
    }
    this.setTiles(data.config);
    this.render();
  }

  setTiles(cfg) {
    const url = cfg?.tile_url || "";
    if (this.tiles?.options.url === url) return;
    if (this.tiles) this.tiles.remove();
    this.tiles = null;
    this.canvas.classList.toggle("map-plain", !url);
    if (!url) return;
    // Leaflet writes attributions as HTML: the city's text goes in escaped, as text
    const text = (cfg.tile_attribution || "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    this.tiles = L.tileLayer(url, { attribution: text, maxZoom: cfg.tile_max_zoom ?? 19, url });
    this.tiles.addTo(this.map);
    this.tiles.bringToBack();
  }

  fillFilters() {
    if (this.use === "all") {
      const uses = new Set(this.data.devices.map((d) => useOfKind(d.kind)).filter(Boolean));
      for (const w of this.data.withheld) if (useOfKind(w.kind)) uses.add(useOfKind(w.kind));
      fill(this.useSelect, Object.keys(USES).filter((u) => uses.has(u)), useLabel);
    }
    const kinds = [...new Set(this.data.devices.map((d) => d.kind).filter((k) => k && this.inUse(k)))].sort();
    fill(this.kindSelect, kinds, kindLabel);
  }

  // Zones of this use: of its zone kinds, or holding one of its devices the caller sees.
  zoneWanted(f) {
    const use = USES[this.currentUse()];
    if (use.zones === null) return true;
    const p = f.properties ?? {};
    return use.zones.includes(p.kind) || (this.byZone.get(p.id) ?? []).some((d) => this.wantedKind(d.kind));
  }

  render() {
    if (!this.data) return;
    this.fillFilters();
    const features = this.data.features.filter((f) => this.zoneWanted(f));
    const drawn = features.filter((f) => f.geometry && !LISTED_ZONE_KINDS.has(f.properties?.kind));
    const listed = features.filter((f) => !drawn.includes(f));
    this.drawZones(drawn);
    const counts = this.drawDevices();
    this.renderLegend(counts);
    this.renderNote(counts);
    this.renderListed(listed);
    if (this.selectedZone) this.showZone(this.selectedZone);
    if (!this.fitted) this.fit();
    this.root.dataset.mapState = "ready";
  }

  drawZones(features) {
    this.zoneLayer.clearLayers();
    this.zoneShapes = new Map();
    const layer = L.geoJSON({ type: "FeatureCollection", features }, {
      style: (f) => {
        const c = ZONE_COLOURS[f.properties?.kind] ?? "#57606a";
        return { color: c, weight: 1.5, fillColor: c, fillOpacity: 0.08,
                 className: `map-zone zone-${f.properties?.kind || "other"}` };
      },
      onEachFeature: (f, shape) => {
        shape.bindTooltip(() => el("span", { textContent: zoneTitle(f.properties) }), { sticky: true });
        shape.on("click", () => this.showZone(f.properties.id));
      },
    });
    this.zoneLayer.addLayer(layer);
    layer.eachLayer((shape) => {
      const p = shape.feature.properties;
      this.zoneShapes.set(p.id, shape);
      const e = shape.getElement?.();
      if (e) Object.assign(e.dataset, { zone: p.id, zoneKind: p.kind || "" });
    });
  }

  drawDevices() {
    this.deviceLayer.clearLayers();
    const counts = { alert: 0, silent: 0, ok: 0, unplaced: 0, shown: 0,
                     bikes: Object.fromEntries(BIKE_STATES.map((s) => [s, 0])) };
    // ok first, alerts last: on top where circles overlap
    const order = (d) => STATES.length - STATES.indexOf(this.states.get(d.eui) ?? "ok");
    const devices = this.data.devices.filter((d) => this.wantedKind(d.kind)).sort((a, b) => order(a) - order(b));
    for (const d of devices) {
      if (typeof d.lat !== "number" || typeof d.lon !== "number") {
        counts.unplaced += 1;
        continue;
      }
      const state = this.states.get(d.eui) ?? "ok";
      const bike = this.bikeState(d);
      counts[state] += 1;
      counts.shown += 1;
      if (bike) counts.bikes[bike] += 1;
      const m = L.circleMarker([d.lat, d.lon], {
        radius: STATE_RADIUS[state], color: bike && state === "alert" ? STATE_COLOURS.alert : "#1b1f24",
        weight: state === "alert" ? (bike ? 3 : 2) : 1, fillColor: bike ? BIKE_COLOURS[bike] : STATE_COLOURS[state],
        fillOpacity: 0.9, className: `map-device state-${state}${bike ? ` bike-${bike}` : ""}`,
      });
      m.bindTooltip(() => el("span", { textContent: `${d.name || d.eui} · ${kindLabel(d.kind)} · `
        + this.stateText(d, state) }));
      const go = () => { location.hash = `#/device/${encodeURIComponent(d.eui)}`; };
      m.on("click", go);
      this.deviceLayer.addLayer(m);
      const e = m.getElement?.();
      if (e) {
        Object.assign(e.dataset, { eui: d.eui, kind: d.kind || "", state, ...(bike ? { bikeState: bike } : {}) });
        e.setAttribute("tabindex", "0");
        e.setAttribute("role", "link");
        e.setAttribute("aria-label", t("map.device.aria", { name: d.name || d.eui, kind: kindLabel(d.kind),
                                                             state: this.stateText(d, state) }));
        e.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
      }
    }
    return counts;
  }

  // a bike-share station's state now, when the stations were read (null: not a station, or not read)
  bikeState(d) {
    if (d.kind !== "bike_station" || !this.data.stations) return null;
    return this.bikes.get(d.eui)?.state ?? "unknown";
  }

  // the alert state, and a station's own state with its bikes and docks
  stateText(d, state) {
    const bike = this.bikeState(d);
    if (!bike) return t(`map.state.${state}`);
    const s = this.bikes.get(d.eui);
    const counts = typeof s?.bikes_available === "number"
      ? ` · ${t("map.bike.counts", { bikes: s.bikes_available, docks: s.docks_available ?? "?" })}` : "";
    return `${t(`map.bike.${bike}`)}${counts}${state === "ok" ? "" : ` · ${t(`map.state.${state}`)}`}`;
  }

  renderLegend(counts) {
    const bikes = BIKE_STATES.filter((s) => counts.bikes[s]);
    this.legend.replaceChildren(
      ...STATES.map((s) => el("li", { dataset: { state: s } },
        el("span", { class: `swatch state-${s}`, style: `background:${STATE_COLOURS[s]}`, "aria-hidden": "true" }),
        t(`map.legend.${s}`, { n: counts[s].toLocaleString() }))),
      ...bikes.map((s) => el("li", { dataset: { bikeState: s } },
        el("span", { class: `swatch bike-${s}`, style: `background:${BIKE_COLOURS[s]}`, "aria-hidden": "true" }),
        t("map.legend.bike", { state: t(`map.bike.${s}`), n: counts.bikes[s].toLocaleString() }))),
      el("li", { class: "zone-key" }, el("span", { class: "swatch zone", "aria-hidden": "true" }),
        t("map.legend.zone")));
    this.count.textContent = t("map.count", { n: counts.shown.toLocaleString() });
  }

  withheldHere() {
    return this.data.withheld.filter((w) => this.wantedKind(w.kind));
  }

  renderNote(counts) {
    const parts = [];
    const withheld = this.withheldHere();
    const total = withheld.reduce((n, w) => n + w.devices, 0);
    if (total) {
      const byClass = {};
      for (const w of withheld) byClass[w.class] = (byClass[w.class] ?? 0) + w.devices;
      parts.push(t("map.note.withheld", {
        n: total.toLocaleString(),
        classes: Object.entries(byClass).map(([c, n]) => t("map.note.class", { class: label(`map.class.${c}`, c),
                                                                               n: n.toLocaleString() })).join(", "),
      }));
    }
    if (counts.unplaced) parts.push(t("map.note.unplaced", { n: counts.unplaced.toLocaleString() }));
    if (this.data.alerts === null) parts.push(t("map.note.no_alerts"));
    this.note.textContent = parts.join(" ");
  }

  renderListed(features) {
    if (!features.length) {
      this.listed.replaceChildren();
      return;
    }
    const items = features.map((f) => {
      const p = f.properties;
      const b = el("button", { type: "button", class: "map-zone-button", textContent: zoneTitle(p),
                               dataset: { zone: p.id } });
      b.addEventListener("click", () => this.showZone(p.id));
      return el("li", {}, b, el("span", { class: "muted", textContent: ` ${this.zoneSummary(p.id)}` }));
    });
    this.listed.replaceChildren(el("h3", { textContent: t("map.listed.title") }),
      el("ul", { class: "map-zone-list" }, ...items));
  }

  zoneSummary(id) {
    const devices = (this.byZone.get(id) ?? []).filter((d) => this.wantedKind(d.kind)).length
      + this.withheldIn(id);
    const alerts = (this.alertsByZone.get(id) ?? []).length;
    return t("map.zone.summary", { devices: devices.toLocaleString(), alerts: alerts.toLocaleString() });
  }

  withheldIn(id) {
    return this.withheldHere().filter((w) => w.zone === id).reduce((n, w) => n + w.devices, 0);
  }

  // A zone's devices (links to their pages), how many are withheld, and its active alerts.
  showZone(id) {
    const f = this.data.features.find((x) => x.properties?.id === id);
    if (!f) return;
    this.selectedZone = id;
    for (const [zid, shape] of this.zoneShapes) shape.setStyle({ weight: zid === id ? 3 : 1.5 });
    const devices = (this.byZone.get(id) ?? []).filter((d) => this.wantedKind(d.kind));
    const withheld = this.withheldIn(id);
    const alerts = this.alertsByZone.get(id) ?? [];
    const close = el("button", { type: "button", class: "map-close", textContent: t("map.zone.close") });
    close.addEventListener("click", () => {
      this.selectedZone = null;
      this.details.replaceChildren();
      for (const shape of this.zoneShapes.values()) shape.setStyle({ weight: 1.5 });
    });
    const deviceItems = devices.map((d) => el("li", { dataset: { eui: d.eui } },
      el("a", { href: `#/device/${encodeURIComponent(d.eui)}`, textContent: d.name || d.eui }),
      el("span", { class: "muted", textContent: ` ${kindLabel(d.kind)} · `
        + this.stateText(d, this.states.get(d.eui) ?? "ok") })));
    const alertItems = alerts.map((a) => el("li", { dataset: { alertId: a.id } },
      el("a", { href: `#/alert/${encodeURIComponent(a.id)}`, textContent: a.rule }),
      el("span", { class: "muted", textContent: ` ${t(`map.alert_state.${a.state}`)}`
        + (a.withheld ? ` · ${t("map.zone.alert_reduced")}` : "") })));
    this.details.replaceChildren(el("article", { class: "panel map-zone-details", dataset: { zone: id } },
      el("h3", { textContent: zoneTitle(f.properties) }), close,
      el("h4", { textContent: t("map.zone.devices", { n: (devices.length + withheld).toLocaleString() }) }),
      devices.length ? el("ul", { class: "map-zone-devices" }, ...deviceItems) : null,
      withheld ? el("p", { class: "muted", textContent: t("map.zone.withheld", { n: withheld.toLocaleString() }) })
        : null,
      el("h4", { textContent: t("map.zone.alerts", { n: alerts.length.toLocaleString() }) }),
      alerts.length ? el("ul", { class: "map-zone-alerts" }, ...alertItems)
        : el("p", { class: "muted", textContent: t("map.zone.no_alerts") })));
  }

  // Show every zone and device drawn; a hidden map waits until it is shown (Leaflet needs its size).
  fit() {
    if (!this.visible() || !this.data) return;
    const bounds = L.latLngBounds([]);
    this.zoneLayer.eachLayer((g) => g.getBounds && bounds.extend(g.getBounds()));
    this.deviceLayer.eachLayer((m) => bounds.extend(m.getLatLng()));
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [12, 12], maxZoom: 17, animate: false });
    this.fitted = true;
  }

  failed(e) {
    this.note.textContent = e.status === 429
      ? t("map.error.rate_limited", { s: e.retryAfter || 60 })
      : t("map.error.load", { message: e.message });
    if (!this.data) this.root.dataset.mapState = "failed";
  }
}
CityMap.count = 0;

function zoneTitle(p) {
  const kind = zoneKindLabel(p.kind);
  return kind ? `${p.name || p.id} (${kind})` : p.name || p.id;
}

// Replace a select's options after its first ("all"), keeping the choice while it is still offered.
function fill(select, values, labelOf) {
  const current = select.value;
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join("\n") !== values.join("\n")) {
    select.replaceChildren(select.options[0], ...values.map((v) => el("option", { value: v, textContent: labelOf(v) })));
  }
  select.value = values.includes(current) ? current : "";
}

// mounting -----------------------------------------------------------------------------------------------
const maps = [];

let drawn = null; // the read last drawn (or being drawn)
let latest = null; // the read the maps mounted later start from

async function refresh() {
  if (!maps.length || document.hidden) return;
  const promise = load();
  if (promise === drawn) return; // nothing new since the last draw
  drawn = promise;
  try {
    const data = await promise;
    latest = data;
    for (const m of maps) m.setData(data);
  } catch (e) {
    for (const m of maps) m.failed(e);
  }
}

export function mountMaps(root = document) {
  let added = false;
  for (const e of root.querySelectorAll("[data-map-use]")) {
    if (e.dataset.mapMounted || !started() || !shown(e)) continue;
    e.dataset.mapMounted = "1";
    const m = new CityMap(e);
    maps.push(m);
    if (latest) m.setData(latest);
    added = true;
  }
  return added;
}

if (typeof L === "undefined") {
  for (const e of document.querySelectorAll("[data-map-use]")) e.textContent = t("map.error.no_leaflet");
} else {
  // the page shown by the route: its map mounted, or measured again (a map mounted while hidden had no size)
  const routed = () => {
    if (mountMaps()) refresh();
    for (const m of maps) m.shown();
  };
  if (started()) routed();
  document.addEventListener("clapas:route", () => setTimeout(routed, 0));
  setInterval(() => refresh(), TICK_MS);
  document.addEventListener("visibilitychange", () => refresh());
  // maps added later (a page built on demand)
  new MutationObserver(() => mountMaps()).observe(document.body, { childList: true, subtree: true });
}
