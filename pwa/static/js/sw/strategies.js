// @ts-check
// How the worker answers each request.
//   pages (navigations)  network first; the kept copy when there is no
//                        signal, the network is slow or the server fails
//                        (5xx), in the guard's language where kept in it
//                        (else in another); else the offline page
//   /static/ assets      cache first: the cache is per build, so never stale
//   /api/playbooks       network first, the kept copy offline
//   any other /api/      never touched: reports and photos go to the server
import { assetsCache, DATA, currentLanguage, keepPage, keptPage, languageOf, remember } from "./precache.js";

// A page that takes longer than this is answered from the phone, and the
// network answer, when it comes, refreshes the kept copy for next time.
const PAGE_TIMEOUT_MS = 4000;

/**
 * @param {Request} request
 * @param {string} version the build
 * @returns {Promise<Response> | null} null: the browser fetches it as usual
 */
export function respond(request, version) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return null;
  if (url.pathname.startsWith("/static/")) return cacheFirst(request, assetsCache(version));
  if (url.pathname.startsWith("/api/playbooks")) return networkFirst(request, DATA);
  if (url.pathname.startsWith("/api/")) return null;
  if (request.mode === "navigate") return page(request, version);
  return null;
}

/**
 * @param {Request} request
 * @param {string} name the cache's
 */
async function cacheFirst(request, name) {
  const cache = await caches.open(name);
  const hit = await cache.match(request, { ignoreSearch: true });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(new URL(request.url).pathname, response.clone());
  return response;
}

/**
 * @param {Request} request
 * @param {string} name the cache's
 */
async function networkFirst(request, name) {
  const cache = await caches.open(name);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (error) {
    const hit = await cache.match(request);
    if (hit) return hit;
    throw error;
  }
}

/**
 * @param {string} key
 * @param {Response} response
 * @param {string} lang
 */
async function keep(key, response, lang) {
  // The server's language is the guard's now (after a switch, say).
  if (response.ok && response.type === "basic") await remember(languageOf(response));
  // Only the guard's own pages: not a redirect to the login page, not an error.
  if (response.ok && !response.redirected && response.type === "basic") {
    await keepPage(key, response.clone(), lang);
  }
  return response;
}

/**
 * @param {Request} request
 * @param {string} version
 * @returns {Promise<Response>}
 */
async function page(request, version) {
  const url = new URL(request.url);
  const key = url.pathname; // "/?source=pwa" is "/"
  const language = currentLanguage(url); // asked alongside the network, not before it
  const network = fetch(request).then(async (response) => keep(key, response, await language));
  const lang = await language;
  let timer;
  const slow = new Promise((resolve) => { timer = setTimeout(resolve, PAGE_TIMEOUT_MS, null); });
  try {
    const first = await Promise.race([network, slow]);
    // A server in trouble (5xx, e.g. a proxy's 502) gets the kept page too.
    if (first && first.status < 500) return first;
    if (first) return (await keptPage(key, lang)) || first;
  } catch {
    // no signal: fall through to the kept copy
  } finally {
    clearTimeout(timer);
  }
  const kept = await keptPage(key, lang);
  if (kept) return kept;
  try {
    return await network;
  } catch {
    return (await keptPage("/offline", lang)) ||
      (await caches.match("/offline", { cacheName: assetsCache(version) })) ||
      new Response("offline", { status: 503, headers: { "Content-Type": "text/plain" } });
  }
}
