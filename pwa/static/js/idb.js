// A tiny promise wrapper over IndexedDB: one database, named stores.
// The outbox (a later layer) builds on the same wrapper.

const DB_NAME = "onsite";
const DB_VERSION = 1;
const STORES = { drafts: { keyPath: "incident" } };

let opening = null;

export function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        for (const [name, options] of Object.entries(STORES)) {
          if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name, options);
        }
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return opening;
}

function run(store, mode, work) {
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const req = work(tx.objectStore(store));
    // Resolve on commit, not on the request: a write is only safe once durable.
    tx.oncomplete = () => resolve(req ? req.result : undefined);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

export const get = (store, key) => run(store, "readonly", (s) => s.get(key));
export const getAll = (store) => run(store, "readonly", (s) => s.getAll());
export const put = (store, value) => run(store, "readwrite", (s) => s.put(value));
export const del = (store, key) => run(store, "readwrite", (s) => s.delete(key));
