// The service worker's events that TypeScript's webworker lib leaves out
// (pwa/sw/jsconfig.json only: the pages have no such events).

// Background Sync: the browser wakes the worker to send the outbox (sw.js).
interface SyncEvent extends ExtendableEvent {
  readonly tag: string;
  readonly lastChance: boolean;
}

interface ServiceWorkerGlobalScopeEventMap {
  sync: SyncEvent;
}
