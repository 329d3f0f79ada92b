// @ts-check
// What the phone keeps offline, and when it is fetched.
//
// Assets (scripts, styles, icons, the offline page) go into a cache named
// after the build, fetched whole at install: a worker is only installed
// once it holds every file of its build. Pages are the guard's own (they
// need a login), so they are kept in a "pages" cache per language, filled at
// install when a session is there and again when a logged-in page asks
// ("warm": after a login, a language switch, a change of contacts), and
// refreshed by every visit (network-first, see strategies.js).
import * as idb from "../idb.js";

// A ServiceWorkerGlobalScope (see sw.js), typed as one.
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/**
 * What /sw/precache.json lists (server/build.py): the build's assets and
 * the pages (and /api/ data) kept for the guard.
 * @typedef {{version: string, assets: string[], pages: string[]}} Manifest
 */
/** @typedef {"zh-CN" | "en"} Language */

export const DATA = "onsite-data";
const ASSETS_PREFIX = "onsite-assets-";
const PAGES_PREFIX = "onsite-pages-";
const OLD_PAGES = "onsite-pages"; // one cache for every language, before issue 17
export const DEFAULT_LANGUAGE = "zh-CN";
const LANG_COOKIE = "onsite_lang";

/** @param {string} version */
export const assetsCache = (version) => ASSETS_PREFIX + version;
/** @param {string} lang */
export const pagesCache = (lang) => PAGES_PREFIX + lang;

// What server/i18n.py's normalise does: "en-GB" is "en", "zh" is "zh-CN".
/**
 * @param {string | null | undefined} value
 * @returns {Language | null}
 */
export function normalise(value) {
  value = (value || "").trim().toLowerCase();
  if (value.startsWith("zh")) return "zh-CN";
  if (value.startsWith("en")) return "en";
  return null;
}

// The language a page was drawn in: the server says so (Content-Language).
/** @param {Response} response */
export const languageOf = (response) => normalise(response.headers.get("Content-Language"));

// The language of the last page the server drew or a page asked for, kept
// in IndexedDB (not in a variable: the worker is stopped between events, and
// sw.js and strategies.js each hold their own copy of this module).
/** @param {string | null} lang */
export async function remember(lang) {
  if (!lang) return;
  await idb.transaction("meta", "readwrite", (s) => s.meta.put({ key: "page-language", value: lang }), "relaxed")
    .catch(() => {});
}

// The language the server would answer ``url`` in, as far as the phone can
// tell with no signal: ?lang=, then the cookie the language switch sets (the
// Cookie Store API, where the browser offers it to workers), then the
// language of the last page seen (a user's own setting, say), then zh-CN.
/**
 * @param {URL} url
 * @returns {Promise<Language>}
 */
export async function currentLanguage(url) {
  const asked = normalise(url.searchParams.get("lang"));
  if (asked) return asked;
  try {
    const cookie = normalise((await sw.cookieStore?.get(LANG_COOKIE))?.value);
    if (cookie) return cookie;
  } catch {
    // no Cookie Store here: what the pages said last
  }
  const remembered = await idb.get("meta", "page-language").catch(() => null);
  return normalise(remembered?.value) || DEFAULT_LANGUAGE;
}

// The kept copy of page ``key``, in ``lang`` if there is one, else in any
// other language: a page in the other language beats the offline page.
/**
 * @param {string} key
 * @param {string} lang
 * @returns {Promise<Response | null>}
 */
export async function keptPage(key, lang) {
  const names = (await caches.keys()).filter((n) => n.startsWith(PAGES_PREFIX));
  const order = [pagesCache(lang), ...names.filter((n) => n !== pagesCache(lang))];
  for (const name of order) {
    if (!names.includes(name)) continue;
    const hit = await (await caches.open(name)).match(key);
    if (hit) return hit;
  }
  return null;
}

// Keep a page under its path, in the cache of the language it was drawn in.
/**
 * @param {string} key
 * @param {Response} response
 * @param {string} fallbackLang
 */
export async function keepPage(key, response, fallbackLang) {
  const lang = languageOf(response) || fallbackLang;
  const cache = await caches.open(pagesCache(lang));
  await cache.put(key, response);
}

/** @returns {Promise<Manifest>} */
async function manifest() {
  const response = await fetch("/sw/precache.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`precache list: HTTP ${response.status}`);
  return response.json();
}

/** @param {string} version */
export async function install(version) {
  const list = await manifest();
  const cache = await caches.open(assetsCache(version));
  // cache: "reload" skips the HTTP cache, so the files are this build's.
  await cache.addAll(list.assets.map((url) => new Request(url, { cache: "reload" })));
  await warm(version, list).catch(() => 0);
}

/** @param {string} version */
export async function activate(version) {
  for (const name of await caches.keys()) {
    if (name.startsWith(ASSETS_PREFIX) && name !== assetsCache(version)) await caches.delete(name);
    if (name === OLD_PAGES) await caches.delete(name); // its pages' language is unknown
  }
}

// Keep every page a guard may need offline: the shell, each playbook guide
// and each report flow, in the language the server draws them in now (the
// page asking says which: ``lang``). A page that answers with the login page
// (no session yet) is skipped; the next logged-in visit asks again.
/**
 * @param {string} version
 * @param {Manifest | null} [list]
 * @param {string | null} [lang]
 * @returns {Promise<number>} how many pages were kept
 */
export function warm(version, list = null, lang = null) {
  const started = Date.now();
  const done = keepAll(list, lang);
  latest = { lang, started, done };
  return done.then((result) => result.kept);
}

/** @typedef {{kept: number, whole: boolean}} Warmed */

// The last warm-up this worker started (a worker stopped when idle forgets it).
/** @type {{lang: string | null, started: number, done: Promise<Warmed>} | null} */
let latest = null;

// A warm-up for a page drawn at ``since`` (ms since the epoch): one that
// started after it, in its language, fetches pages at least as new as that
// page saw, so it is shared rather than done again, unless it was cut short
// (no signal, no session yet). A worker that installs while the guard is
// logged in (the first login, every update) warms at install, and the page
// it controls asks again at once: every page went over the network twice.
/**
 * @param {string} version
 * @param {string | null} lang
 * @param {number} since
 * @returns {Promise<number>} how many pages are kept
 */
export function warmFor(version, lang, since) {
  const last = latest;
  if (last && last.started >= since && (last.lang ?? lang) === lang) {
    return last.done.then((result) => (result.whole ? result.kept : warm(version, null, lang)));
  }
  return warm(version, null, lang);
}

/**
 * @param {Manifest | null} list
 * @param {string | null} lang
 * @returns {Promise<Warmed>}
 */
async function keepAll(list, lang) {
  if (lang) await remember(lang);
  list = list || (await manifest());
  const fallback = lang || (await currentLanguage(new URL(sw.location.href)));
  const data = await caches.open(DATA);
  let kept = 0;
  let whole = true;
  // The offline page too: the build's copy (assets) speaks one language.
  const queue = [...list.pages, "/offline"];
  async function worker() {
    for (let url = queue.shift(); url; url = queue.shift()) {
      try {
        const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
        if (!response.ok || response.redirected) {
          whole = false;
          continue;
        }
        if (url.startsWith("/api/")) await data.put(url, response);
        else await keepPage(url, response, fallback);
        kept += 1;
      } catch {
        whole = false;
        return; // offline: the rest waits for the next warm-up
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { kept, whole };
}

export async function forgetPages() {
  for (const name of await caches.keys()) {
    if (name.startsWith(PAGES_PREFIX) || name === OLD_PAGES) await caches.delete(name);
  }
  await caches.delete(DATA);
}
