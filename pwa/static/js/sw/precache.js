// What the phone keeps offline, and when it is fetched.
//
// Assets (scripts, styles, icons, the offline page) go into a cache named
// after the build, fetched whole at install: a worker is only installed
// once it holds every file of its build. Pages are the guard's own (they
// need a login), so they are kept in one "pages" cache, filled at install
// when a session is there and again when a logged-in page asks ("warm"),
// and refreshed by every visit (network-first, see strategies.js).

export const PAGES = "onsite-pages";
export const DATA = "onsite-data";
const ASSETS_PREFIX = "onsite-assets-";

export const assetsCache = (version) => ASSETS_PREFIX + version;

async function manifest() {
  const response = await fetch("/sw/precache.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`precache list: HTTP ${response.status}`);
  return response.json();
}

export async function install(version) {
  const list = await manifest();
  const cache = await caches.open(assetsCache(version));
  // cache: "reload" skips the HTTP cache, so the files are this build's.
  await cache.addAll(list.assets.map((url) => new Request(url, { cache: "reload" })));
  await warm(version, list).catch(() => 0);
}

export async function activate(version) {
  for (const name of await caches.keys()) {
    if (name.startsWith(ASSETS_PREFIX) && name !== assetsCache(version)) await caches.delete(name);
  }
}

// Keep every page a guard may need offline: the shell, each playbook guide
// and each report flow. A page that answers with the login page (no session
// yet) is skipped; the next logged-in visit asks again.
export async function warm(version, list = null) {
  list = list || (await manifest());
  const pages = await caches.open(PAGES);
  const data = await caches.open(DATA);
  let kept = 0;
  const queue = [...list.pages];
  async function worker() {
    for (let url = queue.shift(); url; url = queue.shift()) {
      try {
        const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
        if (!response.ok || response.redirected) continue;
        await (url.startsWith("/api/") ? data : pages).put(url, response);
        kept += 1;
      } catch {
        return; // offline: the rest waits for the next warm-up
      }
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()]);
  return kept;
}

export async function forgetPages() {
  await caches.delete(PAGES);
  await caches.delete(DATA);
}
