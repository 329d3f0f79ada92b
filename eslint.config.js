// ESLint for the phone app (pwa/): plain ES modules served as written, so
// the linter is the only thing that reads them before a phone does.
import js from "@eslint/js";
import globals from "globals";

// The outbox and its IndexedDB wrapper run in the pages and in the service
// worker alike: they may only use what both have, so a stray `document` or
// `window` there fails here instead of in a Background Sync with no page open.
const shared = Object.fromEntries(
  Object.entries(globals.browser).filter(([name]) => name in globals.serviceworker),
);

export default [
  { ignores: ["**/*.min.js", "**/vendor/**"] },
  js.configs.recommended,
  {
    files: ["pwa/**/*.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module" },
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    files: ["pwa/static/js/**/*.js"],
    // Globals merge across matching blocks, so the worker's and the shared
    // files are left out here rather than narrowed below.
    ignores: ["pwa/static/js/sw/**", "pwa/static/js/idb.js", "pwa/static/js/outbox/**"],
    languageOptions: { globals: globals.browser },
  },
  {
    files: ["pwa/sw/**/*.js", "pwa/static/js/sw/**/*.js"],
    languageOptions: { globals: globals.serviceworker },
  },
  {
    files: ["pwa/static/js/idb.js", "pwa/static/js/outbox/**/*.js"],
    languageOptions: { globals: shared },
  },
  // The unit tests of the outbox's pure logic run in Node (node --test tests/js/).
  {
    files: ["tests/js/**/*.js"],
    languageOptions: { ecmaVersion: "latest", sourceType: "module", globals: globals.node },
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
];
