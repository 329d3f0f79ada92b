// Entry point of every page: registers the service worker.
// The offline outbox and sync arrive with their own modules (see STYLE.md).

if ("serviceWorker" in navigator) {
  // After load, so that registering never competes with the first paint.
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch((err) => {
      console.warn("service worker not registered", err);
    });
  });
}
