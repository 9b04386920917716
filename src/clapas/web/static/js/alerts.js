// The alerts section: open and acknowledged alerts first (the API orders them), then the latest resolved ones,
// with buttons to acknowledge and resolve when the caller may (alerts:write). Device subjects link to the
// device's history (main.js listens); an alert the caller may not read comes reduced (`withheld`): its rule, zone
// and times, never its device, severity or evidence.

import { api } from "./api.js";
import { el } from "./dom.js";
import { ago, localTime } from "./format.js";

const LIMIT = 100;
let canAct = false;

export function setActions(allowed) {
  canAct = allowed;
}

// A few of the values that triggered the alert, as "key value" pairs.
export function evidenceSummary(evidence) {
  const parts = Object.entries(evidence || {})
    .filter(([, v]) => v !== null && typeof v !== "object")
    .slice(0, 4)
    .map(([k, v]) => `${k.replaceAll("_", " ")}: ${v}`);
  return parts.join(" · ");
}

function subjectCell(a) {
  if (a.subject_kind !== "device") return el("span", { textContent: `zone ${a.subject}` });
  if (a.withheld) return el("span", { class: "muted", textContent: `a device (${a.class} data)` });
  const link = el("a", { href: "#history", class: "mono", textContent: a.subject,
                         title: "Show this device's history" });
  link.addEventListener("click", (e) => {
    e.preventDefault();
    document.dispatchEvent(new CustomEvent("clapas:select-device", { detail: a.subject }));
  });
  return link;
}

function actionButton(label, action, a, onDone) {
  const b = el("button", { type: "button", textContent: label, title: `${label} alert ${a.id}` });
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await api.alertAction(a.id, action);
    } catch (e) {
      b.title = e.message;
    }
    await onDone();
  });
  return b;
}

function alertRow(a, onDone) {
  const actions = [];
  if (canAct && !a.withheld && a.state === "open") actions.push(actionButton("Acknowledge", "ack", a, onDone));
  if (canAct && !a.withheld && a.state !== "resolved") actions.push(actionButton("Resolve", "resolve", a, onDone));
  const since = a.state === "resolved" ? a.resolved_at : a.opened_at;
  return el("tr", { class: `alert-${a.state}`, dataset: { alertId: a.id, state: a.state, rule: a.rule } },
    el("td", {}, el("span", { class: `badge ${a.state}`, textContent: a.state })),
    el("td", {}, a.withheld ? el("span", { class: "muted", textContent: "–" })
      : el("span", { class: `sev ${a.severity}`, textContent: a.severity })),
    el("td", { class: "mono", textContent: a.rule, title: a.message || "" }),
    el("td", {}, subjectCell(a), a.zone && a.subject_kind === "device"
      ? el("span", { class: "muted", textContent: ` · ${a.zone}` }) : null),
    el("td", {}, el("time", { dateTime: since || "", title: localTime(since),
                              textContent: `${a.state === "resolved" ? "resolved " : ""}${ago(since)}` })),
    el("td", { class: a.withheld ? "evidence muted" : "evidence", title: a.message || "",
               textContent: a.withheld ? `not shown: ${a.class} data` : evidenceSummary(a.evidence) }),
    el("td", { class: "actions" }, ...actions));
}

// Resolved alerts are history: the latest few are shown under the active ones, the rest on request.
const RESOLVED_SHOWN = 8;
let showAllResolved = false;

function moreRow(hidden) {
  const b = el("button", { type: "button", textContent: `Show ${hidden} more resolved` });
  b.addEventListener("click", () => {
    showAllResolved = true;
    refreshAlerts();
  });
  return el("tr", { class: "more" }, el("td", { colSpan: 7 }, b));
}

export async function refreshAlerts() {
  const { alerts } = await api.alerts(LIMIT);
  const body = document.getElementById("a-rows");
  const activeAlerts = alerts.filter((a) => a.state !== "resolved");
  const resolved = alerts.filter((a) => a.state === "resolved");
  document.getElementById("a-count").textContent =
    `${activeAlerts.length} open or acknowledged${alerts.length >= LIMIT ? ` (first ${LIMIT} shown)` : ""}`;
  const shown = showAllResolved ? resolved : resolved.slice(0, RESOLVED_SHOWN);
  const rows = [...activeAlerts, ...shown].map((a) => alertRow(a, refreshAlerts));
  if (shown.length < resolved.length) rows.push(moreRow(resolved.length - shown.length));
  body.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colSpan: 7, class: "muted", textContent: "No alert." }))]));
}
