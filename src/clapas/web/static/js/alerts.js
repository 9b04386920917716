// Alert tables: the overview's (every alert) and each use page's (its rules only, `data-alerts="water."`), the
// device page's. Open and acknowledged alerts first (the API orders them), then the latest resolved ones, with
// buttons to acknowledge and resolve when the caller may (alerts:write). The rule links to the alert's page, a
// device subject to the device's page. An alert the caller may not read comes reduced (`withheld`): its rule, zone
// and times, never its device, severity or evidence.

import { api } from "./api.js";
import { el } from "./dom.js";
import { ago, localTime, number } from "./format.js";
import { t } from "./i18n.js";
import { href, shown } from "./router.js";

const LIMIT = 100;
const USE_LIMIT = 1000; // a use page filters the latest alerts by rule prefix
const COLUMNS = 7;
let canAct = false;

export function setActions(allowed) {
  canAct = allowed;
}

// A rule's name in the page's language ("water.night_flow" → "Night flow"), the rule itself when unknown.
export function ruleName(rule) {
  const key = `rule.${rule}`;
  const s = t(key);
  if (s !== key) return s;
  const parts = rule.split(".");
  if (parts[0] === "air" && parts.length === 3) { // air.<pollutant>.<level>, one rule per threshold
    return t("rule.air", { pollutant: parts[1].toUpperCase().replace("_", "."), level: t(`air.level.${parts[2]}`) });
  }
  if (rule.startsWith("water.meter_alarm.")) {
    const key = `meter_alarm.${parts[2]}`;
    const alarm = t(key);
    return t("rule.water.meter_alarm", { alarm: alarm === key ? parts[2] : alarm });
  }
  return rule;
}

// An evidence field's name in the page's language ("min_night_flow_lph" → "Minimum night flow (L/h)"); a field
// the catalogs do not name (a rule the city added) shows as it is, its underscores as spaces.
export function fieldName(key) {
  const s = t(`field.${key}`);
  return s === `field.${key}` ? key.replaceAll("_", " ") : s;
}

// A few of the values that triggered the alert, as "name: value" pairs.
export function evidenceSummary(evidence) {
  const parts = Object.entries(evidence || {})
    .filter(([, v]) => v !== null && typeof v !== "object")
    .slice(0, 4)
    .map(([k, v]) => `${fieldName(k)}: ${typeof v === "number" ? number(v) : v}`);
  return parts.join(" · ");
}

function subjectCell(a) {
  if (a.subject_kind !== "device") {
    return el("span", { textContent: t("alerts.zone_subject", { zone: a.subject }) });
  }
  if (a.withheld) {
    return el("span", { class: "muted", textContent: t("alerts.withheld_device", { class: t(`class.${a.class}`) }) });
  }
  return el("a", { href: href.device(a.subject), class: "mono", textContent: a.subject,
                   title: t("alerts.device_link") });
}

function actionButton(label, action, a, onDone) {
  const b = el("button", { type: "button", textContent: label, title: `${label} #${a.id}` });
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

export function alertRow(a, onDone) {
  const actions = [];
  if (canAct && !a.withheld && a.state === "open") {
    actions.push(actionButton(t("alerts.acknowledge"), "ack", a, onDone));
  }
  if (canAct && !a.withheld && a.state !== "resolved") {
    actions.push(actionButton(t("alerts.resolve"), "resolve", a, onDone));
  }
  const since = a.state === "resolved" ? a.resolved_at : a.opened_at;
  return el("tr", { class: `alert-${a.state}`, dataset: { alertId: a.id, state: a.state, rule: a.rule } },
    el("td", {}, el("span", { class: `badge ${a.state}`, textContent: t(`alerts.state.${a.state}`) })),
    el("td", {}, a.withheld ? el("span", { class: "muted", textContent: "–" })
      : el("span", { class: `sev ${a.severity}`, textContent: t(`alerts.severity.${a.severity}`) })),
    el("td", {}, el("a", { href: href.alert(a.id), textContent: ruleName(a.rule), title: a.message || "" }),
      el("span", { class: "mono muted rule", textContent: ` ${a.rule}` })),
    el("td", {}, subjectCell(a), a.zone && a.subject_kind === "device"
      ? el("span", { class: "muted", textContent: ` · ${a.zone}` }) : null),
    el("td", {}, el("time", { dateTime: since || "", title: localTime(since),
                              textContent: a.state === "resolved" ? t("alerts.resolved_ago", { ago: ago(since) })
                                : ago(since) })),
    el("td", { class: a.withheld ? "evidence muted" : "evidence", title: a.message || "",
               textContent: a.withheld ? t("alerts.not_shown", { class: t(`class.${a.class}`) }) : evidenceSummary(a.evidence) }),
    el("td", { class: "actions" }, ...actions));
}

export const noRow = (text, columns = COLUMNS) =>
  el("tr", {}, el("td", { colSpan: columns, class: "muted", textContent: text }));

// The table's head, in the page's language.
export function alertHead() {
  return el("thead", {}, el("tr", {},
    ...["state", "severity", "rule", "subject", "since", "evidence"].map((k) =>
      el("th", { scope: "col", textContent: t(`alerts.col.${k}`) })),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden", textContent: t("alerts.col.actions") }))));
}

// Resolved alerts are history: the latest few are shown under the active ones, the rest on request.
const RESOLVED_SHOWN = 8;
const showAll = new WeakSet(); // sections whose every resolved alert is asked for

function moreRow(section, hidden, again) {
  const b = el("button", { type: "button", textContent: t("alerts.show_more", { n: hidden }) });
  b.addEventListener("click", () => {
    showAll.add(section);
    again();
  });
  return el("tr", { class: "more" }, el("td", { colSpan: COLUMNS }, b));
}

export function renderAlerts(section, alerts, limited, again) {
  const active = alerts.filter((a) => a.state !== "resolved");
  const resolved = alerts.filter((a) => a.state === "resolved");
  section.querySelector(".a-count").textContent = t(active.length === 1 ? "alerts.count_one" : "alerts.count", { n: active.length })
    + (limited ? t("alerts.first_shown", { n: alerts.length }) : "");
  const shownResolved = showAll.has(section) ? resolved : resolved.slice(0, RESOLVED_SHOWN);
  const rows = [...active, ...shownResolved].map((a) => alertRow(a, again));
  if (shownResolved.length < resolved.length) rows.push(moreRow(section, resolved.length - shownResolved.length, again));
  section.querySelector("tbody").replaceChildren(...(rows.length ? rows : [noRow(t("alerts.none"))]));
}

// Every alert section of the page shown: `data-alerts` is a rule prefix ("" on the overview: every alert).
// `ready`: drawn once it settles (main.js: who is calling, hence whether the rows offer acknowledge / resolve).
export async function refreshAlerts(ready = null) {
  const sections = [...document.querySelectorAll("section[data-alerts]")].filter(shown);
  if (!sections.length) return;
  const all = sections.some((s) => !s.dataset.alerts);
  const [{ alerts }] = await Promise.all([api.alerts(all ? LIMIT : USE_LIMIT), ready?.catch(() => {})]);
  for (const s of sections) {
    const prefix = s.dataset.alerts;
    const mine = prefix ? alerts.filter((a) => a.rule.startsWith(prefix)) : alerts;
    renderAlerts(s, mine, !prefix && alerts.length >= LIMIT, refreshAlerts);
  }
}
