// Nick colours, the same as the terminal client's: a nick looks the same everywhere.
//
// The terminal client computes h = (h*31 + c) mod 2**32 over the code points of
// nick.casefold() and picks PALETTE[h % 8]. toLowerCase() stands in for
// casefold(); they differ only for a few letters such as ß.

export const PALETTE = ["#e6194b", "#3cb44b", "#c9a100", "#4363d8", "#f58231", "#911eb4", "#0fa3b1", "#f032e6"];

export function nickHash(nick) {
  let h = 0;
  for (const ch of nick.toLowerCase()) {
    // Math.imul keeps the product exact in 32 bits; >>> 0 makes it unsigned (mod 2**32).
    h = (Math.imul(h, 31) + ch.codePointAt(0)) >>> 0;
  }
  return h;
}

export function nickColor(nick) {
  return PALETTE[nickHash(nick) % PALETTE.length];
}

// The page's own choice (Settings → "More nick colours"): 18 hues, 20° apart (OKLCH), from the
// same hash. Only the hue is picked here; style.css sets the lightness per theme
// (--nick-lightness), so that every hue stays readable on light and on dark.
// The terminal-compatible PALETTE above stays the default.
export const WIDE_HUES = Array.from({ length: 18 }, (_, i) => i * 20);

export function wideNickHue(nick) {
  return WIDE_HUES[nickHash(nick) % WIDE_HUES.length];
}
