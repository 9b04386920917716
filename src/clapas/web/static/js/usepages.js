// The seven use pages (water, heat, floods, air, museum, mobility, health) share one frame, index.html's
// <template id="use-page">: the page's title and introduction, its alerts (the rules of `data-rules`, e.g. "flood.")
// beside its map (js/map.js mounts on `data-map-use`), its report panels (the page's own <article>s, each headed by
// the frame's <template class="panel-frame">, moved into it) and its chart (js/usechart.js: `data-chart-kinds`,
// `data-chart-quantity`; none without). Built once, before the page is translated, so that what fills the pages
// finds the same elements as if they were written out.

function attrs(root, selector, values) {
  const e = root.querySelector(selector);
  for (const [k, v] of Object.entries(values)) e.setAttribute(k, v);
  return e;
}

// A report panel: its heading (`data-title`, `data-sub` keys) and the body its module fills (panels.js).
function framePanel(article, frame) {
  const f = frame.content.cloneNode(true);
  attrs(f, "h3", { id: `${article.id}-h` });
  const [title, sub] = f.querySelectorAll("h3 span");
  title.dataset.i18n = article.dataset.title;
  if (article.dataset.sub) {
    sub.dataset.i18n = article.dataset.sub;
  } else {
    sub.previousSibling.remove(); // the space before it
    sub.remove();
  }
  article.setAttribute("aria-labelledby", `${article.id}-h`);
  article.replaceChildren(f);
}

function build(page, frame) {
  const use = page.dataset.use;
  const f = frame.content.cloneNode(true);
  attrs(f, ".page-title", { "data-i18n": `page.${use}.title` });
  attrs(f, ".intro", { "data-i18n": `page.${use}.intro` });
  attrs(f, "section.alerts", { "data-alerts": page.dataset.rules, "aria-labelledby": `${use}-alerts-h` });
  attrs(f, "section.alerts h2", { id: `${use}-alerts-h` });
  attrs(f, ".map", { "data-map-use": use });
  attrs(f, ".use-panels", { "aria-labelledby": `${use}-panels-h` });
  attrs(f, ".use-panels h2", { id: `${use}-panels-h`, "data-i18n": `page.${use}.title` });
  const panel = f.querySelector("template.panel-frame");
  for (const a of page.querySelectorAll("article[data-title]")) framePanel(a, panel);
  panel.remove();
  f.querySelector(".env-grid").append(...page.children);
  if (page.dataset.chartKinds) {
    attrs(f, ".use-charts", { "aria-labelledby": `${use}-chart-h` });
    attrs(f, ".use-charts h2", { id: `${use}-chart-h` });
    attrs(f, ".use-chart", { "data-kinds": page.dataset.chartKinds, "data-quantity": page.dataset.chartQuantity });
  } else {
    f.querySelector(".use-charts").remove();
  }
  page.replaceChildren(f);
}

export function buildUsePages(doc = document) {
  const frame = doc.getElementById("use-page");
  for (const page of doc.querySelectorAll("main > [data-use]")) {
    if (!page.querySelector(".use-top")) build(page, frame);
  }
}
