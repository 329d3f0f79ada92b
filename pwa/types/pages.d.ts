// What the pages use that TypeScript's DOM lib leaves out (pwa/jsconfig.json).

interface Navigator {
  // Safari on iOS: true when the app was opened from the home screen (me.js).
  readonly standalone?: boolean;
}
