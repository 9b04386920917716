// What every report panel shares: an <article> whose `.body` is filled by one refresh function that reads the API,
// fails on its own (a message in the panel, the others go on) and is refreshed while its page is shown (router.js).

import { refused } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { shown } from "./router.js";

export function fill(id, ...children) {
  document.getElementById(id).querySelector(".body").replaceChildren(...children);
}

export function failed(id, e) {
  // refused (401/403): not open data for this caller — a note, not an error
  fill(id, refused(e) ? el("p", { class: "muted locked", textContent: t("common.not_open", { message: e.message }) })
    : el("p", { class: "err", textContent: t("common.unavailable", { message: e.message }) }));
}

export const empty = (text) => el("p", { class: "muted", textContent: text });

// panels: [[article id, async refresh function]]; only the panels of the page shown are read
export function run(panels, everyMs) {
  const refresh = async () => {
    if (document.hidden) return;
    const visible = panels.filter(([id]) => shown(document.getElementById(id)));
    await Promise.all(visible.map(([id, f]) => f().catch((e) => failed(id, e))));
  };
  document.addEventListener("visibilitychange", refresh);
  document.addEventListener("clapas:route", refresh);
  refresh();
  setInterval(refresh, everyMs);
}
