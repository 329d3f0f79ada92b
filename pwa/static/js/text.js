// Small helpers every page script shares.

// The server's messages keep Python's %(name)s placeholders (see the
// templates' JSON blocks); fill them in.
export const fmt = (template, values) => template.replace(/%\((\w+)\)s/g, (_, k) => values[k]);

// A time of day as the guard reads it on the phone: 24-hour, local.
export const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
