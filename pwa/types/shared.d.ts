// What the phone app uses of the web platform that TypeScript's lib (5.x)
// leaves out, for the pages and the service worker alike. Only declarations,
// read by tsc (pwa/jsconfig.json, pwa/sw/jsconfig.json); nothing here is served.

// Background Sync (WICG): Chromium has it, Safari and Firefox do not, so the
// registration's ``sync`` may be missing (app.js asks with ``?.``).
interface SyncManager {
  register(tag: string): Promise<void>;
  getTags(): Promise<string[]>;
}

interface ServiceWorkerRegistration {
  readonly sync?: SyncManager;
}

// Notification options that Chromium (Android) honours; the lib dropped them
// as not in every browser (sw/notify.js).
interface NotificationOptions {
  renotify?: boolean;
  vibrate?: number | number[];
  timestamp?: number;
}
