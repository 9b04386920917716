// The dashboard's language, chosen once per page load: `?lang=`, else the one chosen before (kept in localStorage),
// else the page's `data-default-lang` (the city's `[web] language`), else the browser's. Apart from i18n.js (whose
// catalogs are awaited on import) so that api.js, and the map's first reads through it, need not wait for them.

export const LANGUAGES = ["fr", "en"];
export const STORED = "clapas.lang";

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

const lang = choose();

export function language() {
  return lang;
}
