// An alert's page (`#/alert/<id>`): what it is (rule, subject, severity, state, times, message), its evidence drawn
// (evidence.js) and listed, and its history (opened, acknowledged, commented, resolved). An alert the caller may
// not read comes reduced: its rule, zone and times, and a note.

import { api, refused } from "./api.js";
import { fieldName, ruleName } from "./alerts.js";
import { el } from "./dom.js";
import { drawEvidence } from "./evidence.js";
import { ago, localTime, number } from "./format.js";
import { t } from "./i18n.js";
import { href, route } from "./router.js";

const $ = (id) => document.getElementById(id);
let drawn = ""; // the alert (and its last change) whose evidence is drawn

function value(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") return number(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function evidenceRows(ev) {
  return Object.entries(ev || {}).map(([k, v]) => el("tr", { dataset: { key: k } },
    el("th", { scope: "row", textContent: fieldName(k), title: k }),
    el("td", { class: typeof v === "object" && v !== null ? "evidence mono" : "num", textContent: value(v) })));
}

function facts(a) {
  const subject = a.withheld ? el("span", { class: "muted", textContent: t("alerts.withheld_device", { class: t(`class.${a.class}`) }) })
    : a.subject_kind === "device" ? el("a", { href: href.device(a.subject), class: "mono", textContent: a.subject })
      : el("span", { textContent: t("alerts.zone_subject", { zone: a.subject }) });
  const rows = [
    ["alert.fact.rule", el("span", {}, ruleName(a.rule), el("span", { class: "mono muted", textContent: ` ${a.rule}` }))],
    ["alert.fact.subject", subject],
    ["alert.fact.zone", a.zone || "–"],
    ["alert.fact.state", el("span", { class: `badge ${a.state}`, textContent: t(`alerts.state.${a.state}`) })],
    ["alert.fact.severity", a.withheld ? "–" : t(`alerts.severity.${a.severity}`)],
    ["alert.fact.opened", `${localTime(a.opened_at)} (${ago(a.opened_at)})`],
    ["alert.fact.resolved", a.resolved_at ? localTime(a.resolved_at) : "–"],
  ];
  return rows.map(([k, v]) => el("div", {}, el("dt", { textContent: t(k) }),
    el("dd", {}, typeof v === "string" ? document.createTextNode(v) : v)));
}

function eventRow(e) {
  return el("tr", { dataset: { kind: e.kind } },
    el("td", {}, el("time", { dateTime: e.time, textContent: localTime(e.time) })),
    el("td", { textContent: t(`alert.event.${e.kind}`) === `alert.event.${e.kind}` ? e.kind : t(`alert.event.${e.kind}`) }),
    el("td", { textContent: e.author || "" }),
    el("td", { class: "evidence", textContent: e.text || "" }));
}

export async function refreshAlertPage() {
  const { page, arg: id } = route();
  if (page !== "alert") return;
  let a;
  try {
    a = await api.alert(id);
  } catch (e) {
    $("al-title").textContent = t("page.alert.title", { arg: id });
    $("al-note").textContent = refused(e) ? t("common.not_open", { message: e.message })
      : t("common.unavailable", { message: e.message });
    $("al-body").hidden = true;
    return;
  }
  if (id !== route().arg) return;
  $("al-body").hidden = false;
  $("al-title").textContent = `${ruleName(a.rule)} · ${a.withheld ? a.zone || "" : a.subject}`;
  document.title = `${ruleName(a.rule)} · clapas`;
  $("al-message").textContent = a.message || "";
  $("al-note").textContent = a.withheld ? t("alerts.not_shown", { class: t(`class.${a.class}`) }) : "";
  $("al-facts").replaceChildren(...facts(a));
  $("al-evidence-rows").replaceChildren(...evidenceRows(a.evidence));
  $("al-events").replaceChildren(...(a.events || []).map(eventRow));
  const key = `${a.id}|${a.updated_at}|${a.state}`;
  if (key !== drawn) { // evidence charts change with the alert only, not at every refresh
    drawn = key;
    const n = await drawEvidence(a, $("al-charts"));
    $("al-charts").dataset.charts = String(n);
  }
}
