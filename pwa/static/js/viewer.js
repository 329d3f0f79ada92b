// @ts-check
// The in-app photo viewer: a tap on a photo link (a[data-photo]) opens it
// full screen over the page, with pinch zoom and a swipe to the next photo
// of the same gallery ([data-gallery]), and the phone's back button or
// gesture closes it. An installed app has no back button of its own: a bare
// JPEG opened from it was a dead end.
//
// PhotoSwipe 5 (vendor/photoswipe, MIT, with its LICENSE) does the viewing;
// it is kept in the repo for offline use and the CSP (scripts and styles from
// this origin only), and loaded on the first tap, not with the page. It no
// longer keeps browser history itself (version 4 did), so this does: one
// history entry while it is open, which "back" takes away.
//
// The links stay links: without JavaScript, or if PhotoSwipe cannot be
// loaded, a tap opens the display JPEG as before. Handlers are on the
// document because live.js swaps the photos in when they change.
const MODULE = "../vendor/photoswipe/photoswipe.esm.min.js";
const STYLE = new URL("../vendor/photoswipe/photoswipe.css", import.meta.url).pathname;

let loading = null;

function stylesheet() {
  if (document.querySelector(`link[href="${STYLE}"]`)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href: STYLE });
    link.onload = resolve;
    link.onerror = reject;
    document.head.append(link);
  });
}

function load() {
  loading ??= Promise.all([import(MODULE), stylesheet()]).then(([module]) => module.default);
  loading.catch(() => { loading = null; }); // offline before it was kept: try again next tap
  return loading;
}

function words() {
  const data = document.getElementById("viewer-data");
  return data ? JSON.parse(data.textContent) : {};
}

// A slide needs the photo's size before it is shown: the page gives the
// display JPEG's (data-width, data-height); a photo without them is measured.
async function slide(link) {
  const thumb = link.querySelector("img");
  const item = {
    src: link.href,
    msrc: thumb?.currentSrc || thumb?.src, // the thumbnail, shown while the photo loads
    alt: thumb?.alt || "",
    width: Number(link.dataset.width) || 0,
    height: Number(link.dataset.height) || 0,
  };
  if (!item.width || !item.height) {
    const img = new Image();
    img.src = item.src;
    await img.decode().catch(() => null);
    item.width = img.naturalWidth || 1600;
    item.height = img.naturalHeight || 1200;
  }
  return item;
}

async function open(link) {
  const PhotoSwipe = await load();
  const links = [...(link.closest("[data-gallery]") || document).querySelectorAll("a[data-photo]")];
  const t = words();
  const viewer = new PhotoSwipe({
    dataSource: await Promise.all(links.map(slide)),
    index: Math.max(0, links.indexOf(link)),
    bgOpacity: 1,
    showHideAnimationType: "fade",
    closeTitle: t.close,
    zoomTitle: t.zoom,
    arrowPrevTitle: t.prev,
    arrowNextTitle: t.next,
    errorMsg: t.error,
  });
  // "Back" closes the viewer and leaves the page where it was; closing it
  // any other way (the ✕, a swipe down) takes its history entry back.
  let popped = false;
  const onPop = () => {
    popped = true;
    // PhotoSwipe ignores a close while it is still opening: a quick "back"
    // would leave it open with its history entry gone.
    if (viewer.opener.isOpen) viewer.close();
    else viewer.on("openingAnimationEnd", () => viewer.close());
  };
  history.pushState({ ...(history.state || {}), viewer: true }, "");
  addEventListener("popstate", onPop);
  viewer.on("destroy", () => {
    removeEventListener("popstate", onPop);
    document.documentElement.dataset.viewer = "closed";
    if (!popped && history.state?.viewer) history.back();
  });
  // For tests, and anyone reading the page: whether it is open, and at which photo.
  const root = document.documentElement.dataset;
  viewer.on("openingAnimationEnd", () => { root.viewer = "open"; });
  viewer.on("change", () => { root.viewerIndex = String(viewer.currIndex); });
  viewer.init();
}

document.addEventListener("click", (event) => {
  const link = /** @type {any} */ (event.target).closest?.("a[data-photo]");
  // A modified click (new tab, download) is the browser's, as on any link.
  if (!link || event.defaultPrevented || event.button !== 0
      || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  open(link).catch(() => { location.href = link.href; });
});
