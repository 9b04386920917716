// The dashboard's texts in French or English. The language is `?lang=`, else the one chosen before (kept in
// localStorage), else the page's <html lang> (the city's default), else the browser's; a text missing from the
// language's catalog falls back to English, then to its key, so a missing translation shows, never breaks.
// Catalogs are i18n/<lang>.json: { "key": "text with {params}" }. Importers wait for them (top-level await).

export const LANGUAGES = ["fr", "en"];
const STORED = "clapas.lang";

function choose() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (LANGUAGES.includes(asked)) {
    localStorage.setItem(STORED, asked);
    return asked;
  }
  const kept = localStorage.getItem(STORED);
  if (LANGUAGES.includes(kept)) return kept;
  const page = document.documentElement.dataset.defaultLang;
  if (LANGUAGES.includes(page)) return page;
  const browser = (navigator.language || "en").slice(0, 2);
  return LANGUAGES.includes(browser) ? browser : "en";
}

async function catalog(lang) {
  const r = await fetch(`i18n/${lang}.json`);
  return r.ok ? r.json() : {};
}

const lang = choose();
const [texts, english] = await Promise.all([catalog(lang), lang === "en" ? Promise.resolve({}) : catalog("en")]);
document.documentElement.lang = lang;

export function language() {
  return lang;
}

// t("alerts.count", { n: 3 }) → "3 alertes"
export function t(key, params = {}) {
  const s = texts[key] ?? english[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

// Elements marked data-i18n="key" get their text; data-i18n-attr="placeholder:key,title:key2" their attributes.
export function translatePage(root = document) {
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of e.dataset.i18nAttr.split(",")) {
      const [attr, key] = pair.split(":");
      e.setAttribute(attr.trim(), t(key.trim()));
    }
  }
}

// Another language: remembered, and the page read again in it.
export function setLanguage(next) {
  if (!LANGUAGES.includes(next) || next === lang) return;
  localStorage.setItem(STORED, next);
  location.reload();
}
