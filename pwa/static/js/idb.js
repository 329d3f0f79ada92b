// @ts-check
// A tiny promise wrapper over IndexedDB: one database, named stores.
// Used by the pages and by the service worker alike.

const DB_NAME = "onsite";
const DB_VERSION = 2;
const STORES = {
  drafts: { keyPath: "incident" }, // the report being made, per incident type
  outbox: { keyPath: "id" },       // reports waiting to be sent (and recently sent)
  blobs: { keyPath: "id" },        // the photo files of outbox reports, by photo id
  meta: { keyPath: "key" },        // small flags, such as "the session expired"
};

/** @typedef {keyof typeof STORES} StoreName */

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
export function open() {
  if (!opening) {
    opening = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        // Upgrades only add stores: whatever waits on the phone stays.
        for (const [name, options] of Object.entries(STORES)) {
          if (!req.result.objectStoreNames.contains(name)) req.result.createObjectStore(name, options);
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        // A newer version of the app (another tab, a new worker) wants to
        // upgrade: let it, and open again on the next call.
        db.onversionchange = () => { db.close(); opening = null; };
        resolve(db);
      };
      req.onerror = () => { opening = null; reject(req.error); };
    });
  }
  return opening;
}

// Run ``work`` in one transaction over ``stores``; it gets the stores by
// name. Resolves with what ``work`` returned (or its requests' results)
// once the transaction has committed. "strict" waits until the write is on
// disk (what the guard entered); "relaxed" is for bookkeeping that is safe
// to lose, such as "this photo was sent" (sending it again is harmless).
/**
 * @template T
 * @param {StoreName | StoreName[]} stores
 * @param {IDBTransactionMode} mode
 * @param {(stores: Record<string, IDBObjectStore>) => T | PromiseLike<T>} work
 * @param {IDBTransactionDurability} [durability]
 * @returns {Promise<T extends IDBRequest<infer R> ? R : T>}
 */
export function transaction(stores, mode, work, durability = "strict") {
  const names = /** @type {StoreName[]} */ ([]).concat(stores);
  return open().then((db) => new Promise((resolve, reject) => {
    const tx = db.transaction(names, mode, { durability });
    const byName = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
    /** @type {T | undefined} */
    let result;
    Promise.resolve(work(byName)).then((value) => { result = value; }, (error) => { tx.abort(); reject(error); });
    tx.oncomplete = () => resolve(result instanceof IDBRequest ? result.result : result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  }));
}

// A request's result as a promise, for use inside ``transaction``.
/** @type {<R>(req: IDBRequest<R>) => Promise<R>} */
export const request = (req) => new Promise((resolve, reject) => {
  req.onsuccess = () => resolve(req.result);
  req.onerror = () => reject(req.error);
});

/** @type {(store: StoreName, key: IDBValidKey) => Promise<any>} */
export const get = (store, key) => transaction(store, "readonly", (s) => s[store].get(key));
/** @type {(store: StoreName) => Promise<any[]>} */
export const getAll = (store) => transaction(store, "readonly", (s) => s[store].getAll());
/** @type {(store: StoreName, value: unknown) => Promise<IDBValidKey>} */
export const put = (store, value) => transaction(store, "readwrite", (s) => s[store].put(value));
/** @type {(store: StoreName, key: IDBValidKey) => Promise<undefined>} */
export const del = (store, key) => transaction(store, "readwrite", (s) => s[store].delete(key));
