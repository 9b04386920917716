// The dashboard's pages, one per use, chosen by the location's hash: `#/` (overview), `#/water`, `#/heat`,
// `#/floods`, `#/air`, `#/museum`, `#/mobility`, `#/health`, `#/settings`, `#/device/<dev_eui>`, `#/alert/<id>`.
// Each page is an element `[data-page="<name>"]` in index.html: the current one is shown, the others hidden, the
// nav link of the current page marked, the title set, and `clapas:route` ({page, arg}) dispatched on `document`
// so that what a page holds (its panels, charts, map) reads the API when it is shown, and only then.

import { t } from "./i18n.js";

export const USES = ["water", "heat", "floods", "air", "museum", "mobility", "health"];
const PAGES = new Set(["overview", ...USES, "settings", "device", "alert"]);
let current = { page: "overview", arg: "" };
let routing = false;

// "#/device/a0a0…" → { page: "device", arg: "a0a0…" }; "#/", "" or "#" → overview; anything else → notfound
export function parse(hash) {
  const path = (hash || "").replace(/^#\/?/, "");
  if (!path) return { page: "overview", arg: "" };
  const [name, ...rest] = path.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  if (!PAGES.has(name) || name === "overview") return { page: "notfound", arg: path };
  if ((name === "device" || name === "alert") !== Boolean(arg)) return { page: "notfound", arg: path };
  return { page: name, arg };
}

export function route() {
  return current;
}

// Has start() shown the location's page? (before, every page but the overview is hidden whatever the hash says)
export function started() {
  return routing;
}

export const href = {
  device: (eui) => `#/device/${encodeURIComponent(eui)}`,
  alert: (id) => `#/alert/${encodeURIComponent(id)}`,
};

// Is this element on the page being shown (not inside a hidden page)?
export function shown(element) {
  const page = element?.closest?.("[data-page]");
  return Boolean(page) && !page.hidden;
}

// a device's or an alert's page is named by what the API says of it (device.js, alertpage.js), not by the URL
export function title(page) {
  const name = t(page === "device" || page === "alert" ? `page.${page}.kicker` : `page.${page}.title`);
  return `${name} · clapas`;
}

function show() {
  current = parse(location.hash);
  for (const p of document.querySelectorAll("main > [data-page]")) p.hidden = p.dataset.page !== current.page;
  for (const a of document.querySelectorAll("nav.pages a[data-nav]")) {
    if (a.dataset.nav === current.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = title(current.page);
  window.scrollTo(0, 0);
  document.dispatchEvent(new CustomEvent("clapas:route", { detail: current }));
}

export function start() {
  routing = true;
  window.addEventListener("hashchange", show);
  show();
}
