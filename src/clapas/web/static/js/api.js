// The REST API, relative to the page so that the dashboard works behind a path prefix. A key typed into the page
// is kept for the browser tab only (sessionStorage) and sent as `Authorization: Bearer`; without one the page is
// anonymous and the API answers with what the city opens to everyone.

import { language } from "./lang.js"; // not i18n.js: a read need not wait for the text catalogs

const KEY = "clapas.key";

export class ApiError extends Error {
  constructor(message, status, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter; // seconds, on a 429
  }
}

// 401 (no or a bad credential) or 403 (a credential without the scope): the panel says so and stays usable.
export const refused = (e) => e instanceof ApiError && (e.status === 401 || e.status === 403);

export function key() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function headers(extra = {}) {
  const k = key();
  // the API writes alert messages and findings in the page's language, not the browser's
  return { Accept: "application/json", "Accept-Language": language(), ...(k ? { Authorization: `Bearer ${k}` } : {}),
    ...extra };
}

async function answer(res, text = null) {
  const body = text === null ? await res.json().catch(() => null) : parse(text);
  if (!res.ok) {
    throw new ApiError(body?.error?.message ?? `${res.status} ${res.statusText}`, res.status,
      Number(res.headers.get("Retry-After")) || 0);
  }
  return body;
}

// Identical GETs in flight at once (two sections of a page asking the same listing) share one request; each caller
// gets its own copy of the body.
const inflight = new Map();

export async function get(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const id = `${key()} ${url}`;
  let shared = inflight.get(id);
  if (!shared) {
    shared = fetch(url, { headers: headers() }).then(async (res) => ({ res, text: await res.text() }));
    inflight.set(id, shared);
    shared.finally(() => inflight.delete(id)).catch(() => {});
  }
  const { res, text } = await shared;
  return answer(res, text);
}

export async function post(path, body = {}) {
  return answer(await fetch(new URL(path, document.baseURI), {
    method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body),
  }));
}

export const api = {
  me: () => get("api/v1/me"),
  counts: () => get("api/v1/counts"),
  devices: (kind, zone) => get("api/v1/devices", { kind, zone, limit: 10000 }),
  latest: (euis) => get("api/v1/latest", { device: euis.join(",") }),
  zones: () => get("api/v1/zones", { format: "json" }),
  quantities: () => get("api/v1/quantities"),
  quarantine: () => get("api/v1/uplinks", { status: "quarantined", limit: 20 }),
  alerts: (limit) => get("api/v1/alerts", { limit }),
  deviceAlerts: (eui) => get("api/v1/alerts", { device: eui, limit: 200 }),
  alert: (id) => get(`api/v1/alerts/${encodeURIComponent(id)}`),
  alertAction: (id, action) => post(`api/v1/alerts/${encodeURIComponent(id)}/${action}`, { author: "dashboard" }),
  historyWindow: (eui, quantity, from, to, resolution) =>
    get(`api/v1/devices/${encodeURIComponent(eui)}/observations`, { quantity, from, to, resolution }),
  // [from, now): the API's window is 24 h from `from` when `to` is not given
  history: (eui, quantity, from, resolution) =>
    get(`api/v1/devices/${encodeURIComponent(eui)}/observations`,
      { quantity, from, to: new Date().toISOString(), resolution }),
};
