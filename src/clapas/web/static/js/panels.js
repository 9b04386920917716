// What every report panel shares: an <article> whose `.body` is filled by one refresh function that reads the API,
// fails on its own (a message in the panel, the others go on) and is refreshed while the page is visible.

import { refused } from "./api.js";
import { el } from "./dom.js";

export function fill(id, ...children) {
  document.getElementById(id).querySelector(".body").replaceChildren(...children);
}

export function failed(id, e) {
  // refused (401/403): not open data for this caller — a note, not an error
  fill(id, refused(e) ? el("p", { class: "muted locked", textContent: `Not open data: ${e.message}` })
    : el("p", { class: "err", textContent: `Unavailable: ${e.message}` }));
}

export const empty = (text) => el("p", { class: "muted", textContent: text });

// panels: [[article id, async refresh function]]
export function run(panels, everyMs) {
  const refresh = async () => {
    if (document.hidden) return;
    await Promise.all(panels.map(([id, f]) => f().catch((e) => failed(id, e))));
  };
  document.addEventListener("visibilitychange", refresh);
  refresh();
  setInterval(refresh, everyMs);
}
