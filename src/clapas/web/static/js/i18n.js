// The dashboard's texts in French or English, in the language lang.js chose; a text missing from the
// language's catalog falls back to English, then to its key, so a missing translation shows, never breaks.
// Catalogs are i18n/<lang>.json: { "key": "text with {params}" }. Importers wait for them (top-level await).

import { LANGUAGES, STORED, language } from "./lang.js";

export { LANGUAGES, language };

async function catalog(lang) {
  const r = await fetch(`i18n/${lang}.json`);
  return r.ok ? r.json() : {};
}

const lang = language();
const [texts, english] = await Promise.all([catalog(lang), lang === "en" ? Promise.resolve({}) : catalog("en")]);
document.documentElement.lang = lang;

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
