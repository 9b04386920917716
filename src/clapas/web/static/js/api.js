// The REST API, relative to the page so that the dashboard works behind a path prefix.

export class ApiError extends Error {}

export async function get(path, params = {}) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(body?.error?.message ?? `${res.status} ${res.statusText}`);
  }
  return body;
}

export async function post(path, body = {}) {
  const res = await fetch(new URL(path, document.baseURI), {
    method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(data?.error?.message ?? `${res.status} ${res.statusText}`);
  return data;
}

export const api = {
  counts: () => get("api/v1/counts"),
  devices: (kind, zone) => get("api/v1/devices", { kind, zone, limit: 10000 }),
  latest: (euis) => get("api/v1/latest", { device: euis.join(",") }),
  zones: () => get("api/v1/zones", { format: "json" }),
  quantities: () => get("api/v1/quantities"),
  quarantine: () => get("api/v1/uplinks", { status: "quarantined", limit: 20 }),
  alerts: (limit) => get("api/v1/alerts", { limit }),
  alertAction: (id, action) => post(`api/v1/alerts/${encodeURIComponent(id)}/${action}`, { author: "dashboard" }),
  history: (eui, quantity, from, resolution) =>
    get(`api/v1/devices/${encodeURIComponent(eui)}/observations`, { quantity, from, resolution }),
};
