// draft/multiline for the page: the limits from the cap's value, cutting what the
// user wrote into batches that fit them, and putting a received batch back together.
//
// Pure: strings and plain objects in and out. chat.js sends the batches
// (BATCH +ref draft/multiline #room, one PRIVMSG per line, BATCH -ref) and
// shows a received one as a single message.

import { TEXT_BYTES, splitText, utf8Length } from "./irc.js";

// What the specification lets a server leave out of the cap's value.
const FALLBACK_MAX_LINES = 24;

/** "max-bytes=4096,max-lines=100" as {maxBytes, maxLines}. */
export function parseMultilineCap(value = "") {
  const limits = { maxBytes: 0, maxLines: FALLBACK_MAX_LINES };
  for (const item of value.split(",")) {
    const [key, raw = ""] = item.split("=", 2);
    const number = Number.parseInt(raw, 10);
    if (!Number.isFinite(number) || number <= 0) continue;
    if (key === "max-bytes") limits.maxBytes = number;
    if (key === "max-lines") limits.maxLines = number;
  }
  return limits;
}

/**
 * What the user wrote (lines, blank ones kept inside) as batches that fit the
 * limits: each batch is [{text, concat}], and a line longer than lineBytes goes
 * as pieces that continue it (draft/multiline-concat). A message too big for
 * one batch becomes several, each starting on a line of its own.
 */
export function multilineBatches(lines, { maxBytes, maxLines }, lineBytes = TEXT_BYTES) {
  const batches = [];
  let batch = [];
  let size = 0;
  const limitBytes = maxBytes || Infinity;
  for (const line of lines) {
    const pieces = line ? splitText(line, Math.min(lineBytes, limitBytes)) : [""];
    pieces.forEach((text, index) => {
      // The line break before a new line counts as a byte of the message.
      const cost = utf8Length(text) + (index === 0 && batch.length ? 1 : 0);
      if (batch.length && (batch.length + 1 > maxLines || size + cost > limitBytes)) {
        batches.push(batch);
        batch = [];
        size = 0;
      }
      batch.push({ text, concat: index > 0 && batch.length > 0 });
      size += utf8Length(text) + (index === 0 && batch.length > 1 ? 1 : 0);
    });
  }
  if (batch.length) batches.push(batch);
  return batches;
}

/** The text of a received multiline batch: its lines joined by line breaks, continued ones glued on. */
export function joinMultiline(parts) {
  let text = "";
  parts.forEach(({ text: part, concat }, index) => {
    text += index === 0 || concat ? part : `\n${part}`;
  });
  return text;
}
