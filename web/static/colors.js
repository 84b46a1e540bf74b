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
