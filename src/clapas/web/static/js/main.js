// The dashboard: a header (who is calling, the key, FR | EN), a nav bar and one page per use (router.js). The page
// shown is re-read from the API every REFRESH_MS (its panels every minute, panels.js); the DOM is built with
// textContent (never innerHTML), every text through i18n.js. It shows what the caller may see (anonymous: open
// data): a section the API refuses (401/403) says so and the others go on; devices the API withholds are counted
// per zone, never listed.

import { alertHead, refreshAlerts, setActions } from "./alerts.js";
import { refreshAlertPage } from "./alertpage.js";
import { api, key, refused, setKey } from "./api.js";
import { refreshDevice, wireDevice } from "./device.js";
import { clockTime } from "./format.js";
import { LANGUAGES, language, setLanguage, t, translatePage } from "./i18n.js";
import { forget, refreshOverview, wireOverview } from "./overview.js";
import { route, start } from "./router.js";
import { refreshUseCharts } from "./usechart.js";
import { buildUsePages } from "./usepages.js";

const REFRESH_MS = 5000;
// anonymous callers share their address's rate limit ([charter.roles.public]): half as often
const ANONYMOUS_REFRESH_MS = 10000;

const $ = (id) => document.getElementById(id);
const state = { me: null };

function setStatus(text) {
  $("status").textContent = text;
}

// who is calling -------------------------------------------------------------------------------------------------
async function refreshMe() {
  if (state.me) return; // read again only when the key changes
  let me;
  try {
    me = await api.me();
  } catch (e) {
    if (!refused(e)) throw e; // a bad key: the API says why
    $("who").textContent = t("key.refused", { message: e.message });
    setActions(false);
    return;
  }
  state.me = me;
  setActions(me.scopes.includes("alerts:write"));
  const what = t(me.scopes.includes("personal:read") ? "who.personal"
    : me.scopes.includes("restricted:read") ? "who.restricted" : "who.open");
  $("who").textContent = me.via === "anonymous" ? t("who.anonymous", { what })
    : t("who.key", { actor: me.actor, role: me.role, what });
  $("key-clear").hidden = !key();
}

// what each page reads at every refresh (its panels refresh themselves); `me`: who is calling, known — the alerts
// are asked meanwhile but drawn once it is known (what the caller may do decides the buttons they offer)
function pageReads(page, me) {
  if (page === "overview") return [refreshAlerts(me), ...refreshOverview()];
  if (page === "device") return [me.then(refreshDevice)];
  if (page === "alert") return [me.then(refreshAlertPage)];
  return [refreshAlerts(me), refreshUseCharts()];
}

// loop -----------------------------------------------------------------------------------------------------------
let busy = false;
let again = false; // a refresh asked for while one ran (another page chosen): run once more after it
let last = 0;
let pausedUntil = 0;

async function refresh(force = false) {
  const now = Date.now();
  const every = state.me && state.me.via !== "anonymous" ? REFRESH_MS : ANONYMOUS_REFRESH_MS;
  if (busy) {
    again ||= force;
    return;
  }
  if (document.hidden || (!force && (now < pausedUntil || now - last < every - 500))) return;
  busy = true;
  last = now;
  try {
    const me = refreshMe(); // asked alongside the page's reads, not before them (one round trip less)
    // each section on its own: one that fails leaves the others updated
    const done = await Promise.allSettled([me, ...pageReads(route().page, me)]);
    const failed = done.find((d) => d.status === "rejected");
    if (failed) throw failed.reason;
    setStatus(t("status.updated", { time: clockTime() }));
  } catch (e) {
    if (e.status === 429) {
      pausedUntil = Date.now() + (e.retryAfter || 60) * 1000;
      setStatus(t("status.rate_limited", { s: e.retryAfter || 60 }));
    } else {
      setStatus(t("status.failed", { message: e.message }));
    }
  } finally {
    busy = false;
    if (again) {
      again = false;
      refresh(true);
    }
  }
}

function languageSwitch() {
  const box = $("lang");
  box.replaceChildren(...LANGUAGES.flatMap((l, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.lang = l;
    b.dataset.lang = l;
    b.textContent = l.toUpperCase();
    b.title = t(`lang.${l}`);
    b.setAttribute("aria-pressed", String(l === language()));
    b.addEventListener("click", () => setLanguage(l));
    return i ? [document.createTextNode(" | "), b] : [b];
  }));
}

function wire() {
  const reset = () => {
    state.me = null;
    forget();
    refresh(true);
  };
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setKey($("key").value.trim());
    $("key").value = "";
    reset();
  });
  $("key-clear").addEventListener("click", () => {
    setKey("");
    reset();
  });
  wireOverview((e) => setStatus(e.message));
  wireDevice();
  document.addEventListener("clapas:route", () => refresh(true));
  document.addEventListener("visibilitychange", () => refresh());
}

buildUsePages(); // the use pages' shared frame, filled per use before it is translated
translatePage();
for (const table of document.querySelectorAll("table.alert-table")) table.prepend(alertHead());
languageSwitch();
wire();
start(); // shows the page of the location's hash and refreshes it
setInterval(refresh, REFRESH_MS);
// pages other helpers add: they mount themselves when present (the map on every [data-map-use], the settings page)
for (const m of ["./map.js", "./settings.js"]) import(m).catch(() => {});
