// @ts-check
// Small helpers every page script shares.

// The server's messages keep Python's %(name)s placeholders (see the
// templates' JSON blocks); fill them in.
export const fmt = (template, values) => template.replace(/%\((\w+)\)s/g, (_, k) => values[k]);

// A time of day as the guard reads it on the phone: 24-hour, local.
export const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });

// Put ``text`` on the clipboard (with the old way as a fallback: some
// in-app browsers have no async clipboard).
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
}
