// Photos are made smaller on the phone before they are kept or sent: a
// 12 MP camera file becomes ~0.3 MB, which a basement connection can carry.
// The long edge is the server's display size (DISPLAY_EDGE in
// server/photos.py): a bigger photo would be uploaded only to be shrunk.
const LONG_EDGE = 1600;
const QUALITY = 0.85;

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
  let blob;
  if (typeof OffscreenCanvas !== "undefined") {
    const canvas = new OffscreenCanvas(w, h);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
    blob = await canvas.convertToBlob({ type: "image/jpeg", quality: QUALITY });
  } else {
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(bitmap, 0, 0, w, h);
    blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", QUALITY));
  }
  bitmap.close();
  // Never make it bigger than what the camera gave.
  return blob && blob.size < file.size ? blob : file;
}
