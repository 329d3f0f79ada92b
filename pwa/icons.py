"""Draw the app icons (run by hand when the design changes; the PNGs are committed)."""

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = (185, 28, 28)
OUT = Path(__file__).parent / "static" / "icons"


def icon(size: int, safe: float) -> Image.Image:
    """A white shield with an exclamation mark on the brand red.

    ``safe`` is the share of the canvas the shield may use: maskable icons
    keep their content inside the central 80 % circle.
    """
    scale = 4  # draw large, then downscale, for smooth edges
    s = size * scale
    img = Image.new("RGB", (s, s), BRAND)
    d = ImageDraw.Draw(img)
    m = s * (1 - safe) / 2
    w = s - 2 * m
    top, bottom = m + w * 0.05, m + w * 0.98
    shield = [
        (s / 2, top),
        (m + w * 0.9, top + w * 0.14),
        (m + w * 0.9, m + w * 0.45),
        (s / 2, bottom),
        (m + w * 0.1, m + w * 0.45),
        (m + w * 0.1, top + w * 0.14),
    ]
    d.polygon(shield, fill="white")
    bar_w = w * 0.11
    d.rounded_rectangle(
        [s / 2 - bar_w / 2, m + w * 0.25, s / 2 + bar_w / 2, m + w * 0.6],
        radius=bar_w / 2,
        fill=BRAND,
    )
    r = w * 0.065
    d.ellipse([s / 2 - r, m + w * 0.7 - r, s / 2 + r, m + w * 0.7 + r], fill=BRAND)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def badge(size: int) -> Image.Image:
    """The notification badge: the shield alone, white on transparent.

    Android draws a badge as a mask (only its alpha counts), so the mark is
    cut out of the shield rather than painted on it.
    """
    full = icon(size, 0.9)
    # White pixels of the icon are the shield; the red ones the background and the mark.
    mask = full.convert("L").point(lambda v: 255 if v > 200 else 0)
    out = Image.new("RGBA", full.size, (255, 255, 255, 0))
    out.paste((255, 255, 255, 255), mask=mask)
    return out


if __name__ == "__main__":
    icon(192, 0.8).save(OUT / "icon-192.png", optimize=True)
    icon(512, 0.8).save(OUT / "icon-512.png", optimize=True)
    icon(512, 0.6).save(OUT / "icon-maskable-512.png", optimize=True)
    icon(180, 0.8).save(OUT / "apple-touch-icon.png", optimize=True)
    badge(96).save(OUT / "badge-96.png", optimize=True)
