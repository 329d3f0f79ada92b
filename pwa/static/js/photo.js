// @ts-check
// Photos are made smaller on the phone before they are kept or sent: a
// 12 MP camera file becomes ~0.2 MB, which a basement connection can carry.
// The long edge is the server's display size (DISPLAY_EDGE in
// server/photos.py): a bigger photo would be uploaded only to be shrunk.
//
// The encoding was chosen with bench/photos.py (the phone's part, through
// Chromium's canvas encoder; figures in README.md): WebP at 0.8 is the
// smallest that keeps SSIM >= 0.95 against a reference downscale on every
// sample phone photo, at 113-215 KB where JPEG at 0.85 was 190-374 KB; no
// JPEG quality stays under 250 KB with SSIM >= 0.95. A browser that cannot
// encode WebP (Safari gives PNG instead) sends JPEG at 0.8, the lowest
// JPEG quality that still keeps SSIM >= 0.95. The server takes both.
const LONG_EDGE = 1600;
const ENCODINGS = [
  { type: "image/webp", quality: 0.8 },
  { type: "image/jpeg", quality: 0.8 },
];

// Re-encoding drops the original's EXIF, so what is worth keeping of it
// (capture time, GPS, camera) is read first, with exifr. It is kept in the
// repo (vendor/exifr, MIT, with its LICENSE), not taken from a CDN: the app
// works offline and its CSP runs scripts from this origin only. The "lite"
// build reads JPEG and HEIC, EXIF and GPS: all a phone's camera writes. It
// is loaded on the first photo, not with every page.
const EXIFR = "../vendor/exifr/lite.esm.js";
const EXIF_OPTIONS = {
  ifd0: { pick: ["Make", "Model"] },
  exif: { pick: ["DateTimeOriginal", "OffsetTimeOriginal"] },
  gps: true,
  // Dates as written ("2024:05:03 14:02:11"): exifr would read them in
  // whatever zone the browser is in, losing OffsetTimeOriginal.
  reviveValues: false,
  translateValues: false,
  ifd1: false, interop: false, xmp: false, icc: false, iptc: false, jfif: false, ihdr: false,
};
// What the server accepts (server/photos.py PhotoQuery): anything else is
// left out here, so a camera's odd clock never makes an upload fail.
const CAMERA_MAX = 200;
const FIRST_YEAR = 2001; // a year inside, so no zone moves it outside in UTC
const LAST_YEAR = 2098;

let exifr = null;

const pad = (n) => String(Math.abs(Math.trunc(n))).padStart(2, "0");

// "2024:05:03 14:02:11" and "+08:00" as ISO 8601 with its offset. Without
// an offset in the file the phone's own zone is the best guess: a phone's
// camera writes its wall clock, in the zone the phone is in.
export function isoTime(taken, offset) {
  const m = /^(\d{4}):(\d\d):(\d\d) (\d\d):(\d\d):(\d\d)/.exec(String(taken || "").trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number);
  if (year < FIRST_YEAR || year > LAST_YEAR || month < 1 || month > 12 || day < 1 || day > 31
      || hour > 23 || minute > 59 || second > 59) return null;
  let zone = /^[+-]\d\d:\d\d$/.test(String(offset || "").trim()) ? String(offset).trim() : null;
  if (!zone) {
    const minutes = -new Date(year, month - 1, day, hour, minute, second).getTimezoneOffset();
    zone = `${minutes < 0 ? "-" : "+"}${pad(minutes / 60)}:${pad(minutes % 60)}`;
  }
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${zone}`;
}

// The original's capture time, GPS and camera, as the upload's query
// parameters take them: {taken_at?, lat?, lon?, camera?}. Never throws: a
// photo with odd or no EXIF is still a photo.
export async function readMeta(file) {
  const meta = {};
  try {
    exifr ??= import(EXIFR);
    const tags = await (await exifr).parse(file, EXIF_OPTIONS);
    if (!tags) return meta;
    const taken = isoTime(tags.DateTimeOriginal, tags.OffsetTimeOriginal);
    if (taken) meta.taken_at = taken;
    const { latitude: lat, longitude: lon } = tags;
    if (Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90
        && Math.abs(lon) <= 180 && (lat !== 0 || lon !== 0)) {
      meta.lat = Math.round(lat * 1e7) / 1e7;
      meta.lon = Math.round(lon * 1e7) / 1e7;
    }
    const text = (v) => (typeof v === "string" ? v.replace(/\0/g, "").trim() : "");
    let [make, model] = [text(tags.Make), text(tags.Model)];
    if (make && model.toLowerCase().startsWith(make.toLowerCase())) make = "";
    const camera = `${make} ${model}`.trim().slice(0, CAMERA_MAX);
    if (camera) meta.camera = camera;
  } catch {
    exifr = null; // not loaded (offline before it was kept?): try again next time
  }
  return meta;
}

async function encode(canvas, type, quality) {
  if (canvas.convertToBlob) return canvas.convertToBlob({ type, quality });
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

export async function compress(file) {
  let bitmap;
  try {
    // "from-image" applies the EXIF orientation, so the result is upright.
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    return file; // a format the browser cannot decode (e.g. HEIC): send as is
  }
  const scale = Math.min(1, LONG_EDGE / Math.max(bitmap.width, bitmap.height));
  const w = Math.round(bitmap.width * scale);
  const h = Math.round(bitmap.height * scale);
  let canvas;
  if (typeof OffscreenCanvas !== "undefined") {
    canvas = new OffscreenCanvas(w, h);
  } else {
    canvas = Object.assign(document.createElement("canvas"), { width: w, height: h });
  }
  /** @type {CanvasDrawImage} */ (canvas.getContext("2d")).drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  let blob = null;
  for (const { type, quality } of ENCODINGS) {
    blob = await encode(canvas, type, quality).catch(() => null);
    if (blob?.type === type) break; // else the browser made something else (PNG): next
  }
  // Never make it bigger than what the camera gave.
  return blob && blob.size < file.size ? blob : file;
}

// A photo as the phone keeps it: made smaller, with what its EXIF said.
export async function prepare(file) {
  const [meta, blob] = await Promise.all([readMeta(file), compress(file)]);
  return { blob, meta };
}
