// The device-health page's figures (`#/health`): the open findings of the health rules (silent devices, offline
// gateways, low batteries, weak radio, stuck sensors) counted by kind and zone, the devices to visit and the
// maintenance list (CSV). Health is restricted data: an anonymous visitor gets the note, not the list.

import { get } from "./api.js";
import { el } from "./dom.js";
import { ago, integer } from "./format.js";
import { t } from "./i18n.js";
import { href } from "./router.js";
import { kindName } from "./overview.js";
import { empty, fill, run } from "./panels.js";

const REFRESH_MS = 30000;
const PROBLEMS = ["silent", "gateway_offline", "low_battery", "weak_radio", "stuck_sensor"];

async function refreshFleet() {
  const h = await get("api/v1/health");
  const counts = el("dl", { class: "counts" }, el("div", {}, el("dt", { textContent: t("health.devices") }),
    el("dd", { dataset: { figure: "devices" }, textContent: integer(h.devices) })),
  ...PROBLEMS.map((p) => el("div", { class: h.problems[p] ? "warn nonzero" : "warn" },
    el("dt", { textContent: t(`health.problem.${p}`) }),
    el("dd", { dataset: { problem: p }, textContent: integer(h.problems[p] ?? 0) }))));
  const kinds = Object.entries(h.by_kind);
  const byKind = kinds.length ? el("table", {},
    el("caption", { textContent: t("health.by_kind") }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", textContent: t("health.kind") }),
      ...PROBLEMS.map((p) => el("th", { scope: "col", class: "num", textContent: t(`health.problem.${p}`) })))),
    el("tbody", {}, ...kinds.map(([k, c]) => el("tr", { dataset: { kind: k } },
      el("th", { scope: "row", textContent: kindName(k) || "–" }),
      ...PROBLEMS.map((p) => el("td", { class: `num ${c[p] ? "over" : ""}`, textContent: integer(c[p] ?? 0) })))))) : null;
  const listed = h.listed.length ? el("table", { class: "visit" },
    el("caption", { textContent: t("health.to_visit") }),
    el("thead", {}, el("tr", {}, ...["device", "kind", "zone", "problem", "since"].map((k) =>
      el("th", { scope: "col", textContent: t(`health.col.${k}`) })))),
    el("tbody", {}, ...h.listed.map((l) => el("tr", { dataset: { eui: l.eui, problem: l.problem } },
      el("td", {}, el("a", { href: href.device(l.eui), class: "mono", textContent: l.eui })),
      el("td", { textContent: kindName(l.kind) }), el("td", { textContent: l.zone || "" }),
      el("td", { title: l.why || "", textContent: t(`health.problem.${l.problem}`) }),
      el("td", { textContent: ago(l.since) })))))
    : empty(t("health.nothing"));
  const gateways = h.gateways.length ? el("ul", {}, ...h.gateways.map((g) => el("li", { dataset: { gateway: g.gateway } },
    t("health.gateway", { gateway: g.gateway, ago: ago(g.offline_since), n: g.orphaned })))) : null;
  fill("health-fleet", counts, byKind, listed, gateways,
    h.withheld ? el("p", { class: "muted", textContent: t("health.withheld", { n: h.withheld }) }) : null,
    el("p", {}, el("a", { href: "api/v1/health/maintenance.csv", download: "maintenance.csv",
                          textContent: t("health.csv") })));
}

run([["health-fleet", refreshFleet]], REFRESH_MS);
