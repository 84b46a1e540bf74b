// IRC message syntax for the page: parse and format lines, tags and names.
//
// Pure, like backend/irc/message.py which it mirrors: strings in, objects out, and
// back. No DOM, no sockets, no state. Syntax follows the "Modern IRC client
// protocol" document and the IRCv3 message-tags specification.

export const MAX_LINE_BYTES = 512;
export const NICK_MAX = 30;
// Room for the text of one PRIVMSG: 512 bytes minus CRLF, the command, the
// target and the ":nick!user@host " prefix the server adds when relaying it.
export const TEXT_BYTES = 400;

const TAG_ESCAPES = { ";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n" };
const TAG_UNESCAPES = { ":": ";", s: " ", "\\": "\\", r: "\r", n: "\n" };
const encoder = new TextEncoder();

/** Escape a tag value as the message-tags specification requires. */
export function escapeTagValue(value) {
  return Array.from(value, (ch) => TAG_ESCAPES[ch] ?? ch).join("");
}

/** Undo escapeTagValue; unknown escapes drop the backslash, a lone trailing one is dropped. */
export function unescapeTagValue(raw) {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i];
    if (ch !== "\\") {
      out += ch;
      continue;
    }
    i++;
    if (i < raw.length) out += TAG_UNESCAPES[raw[i]] ?? raw[i];
  }
  return out;
}

/**
 * Parse one line (without CRLF) into {tags, source, command, params}.
 * Throws an Error when the line has no command, like protocol.parse_line.
 */
export function parseLine(line) {
  let rest = line.replace(/[\r\n]+$/, "");
  const tags = {};
  if (rest.startsWith("@")) {
    const space = rest.indexOf(" ");
    const tagPart = space < 0 ? rest.slice(1) : rest.slice(1, space);
    rest = space < 0 ? "" : rest.slice(space + 1).replace(/^ +/, "");
    for (const item of tagPart.split(";")) {
      if (!item) continue;
      const eq = item.indexOf("=");
      if (eq < 0) tags[item] = "";
      else tags[item.slice(0, eq)] = unescapeTagValue(item.slice(eq + 1));
    }
  }
  let source = null;
  if (rest.startsWith(":")) {
    const space = rest.indexOf(" ");
    source = space < 0 ? rest.slice(1) : rest.slice(1, space);
    rest = space < 0 ? "" : rest.slice(space + 1).replace(/^ +/, "");
  }
  let trailing = null;
  const colon = rest.indexOf(" :");
  if (colon >= 0) {
    trailing = rest.slice(colon + 2);
    rest = rest.slice(0, colon);
  } else if (rest.startsWith(":")) {
    trailing = rest.slice(1);
    rest = "";
  }
  const words = rest.split(" ").filter(Boolean);
  if (words.length === 0) throw new Error("no command");
  const params = words.slice(1);
  if (trailing !== null) params.push(trailing);
  return { tags, source, command: words[0].toUpperCase(), params };
}

/** The message as one line of text, without CRLF; the last parameter gets ':' when it needs one. */
export function formatMessage({ tags = {}, source = null, command, params = [] }) {
  const parts = [];
  const tagItems = Object.entries(tags).map(([k, v]) => (v ? `${k}=${escapeTagValue(v)}` : k));
  if (tagItems.length) parts.push("@" + tagItems.join(";"));
  if (source) parts.push(":" + source);
  parts.push(command);
  params.forEach((p, i) => {
    const last = i === params.length - 1;
    if (!last && (!p || p.includes(" ") || p.startsWith(":"))) {
      throw new Error(`middle parameter ${JSON.stringify(p)} cannot be sent`);
    }
    parts.push(last && (!p || p.includes(" ") || p.startsWith(":")) ? ":" + p : p);
  });
  // CR, LF and NUL never leak into a line: they would end it or be refused.
  return parts.join(" ").replace(/[\r\n]/g, " ").replace(/\0/g, "");
}

/** The nick in a nick!user@host source (or the whole source for a server). */
export function nickOf(source) {
  if (!source) return "";
  const bang = source.indexOf("!");
  return bang < 0 ? source : source.slice(0, bang);
}

/** Whether a source is a user (nick!user@host) rather than a server. */
export function isUserSource(source) {
  return Boolean(source) && source.includes("!");
}

/** The case-insensitive key of a nick or room (the server casefolds; toLowerCase is close). */
export function fold(name) {
  return name.toLowerCase();
}

export function isChannel(name) {
  return typeof name === "string" && name.startsWith("#");
}

const NICK_FIRST = /^[\p{L}_[\]\\`^{}|]$/u;
const NICK_REST = /^[\p{L}\p{Nd}_\-[\]\\`^{}|]$/u;

/** Letters of any script, digits and _-[]\`^{}|; not starting with a digit or '-'; at most 30. */
export function isValidNick(nick) {
  const chars = Array.from(nick);
  if (chars.length === 0 || chars.length > NICK_MAX) return false;
  return NICK_FIRST.test(chars[0]) && chars.every((ch) => NICK_REST.test(ch));
}

/** '#' then up to 49 characters, none of them space, comma, BEL, ':' or control characters. */
export function isValidChannel(name) {
  const chars = Array.from(name);
  return chars.length >= 2 && chars.length <= 50 && name.startsWith("#") && !/[\s,\x07:\p{Cc}]/u.test(name);
}

export function utf8Length(text) {
  return encoder.encode(text).length;
}

/**
 * Split text into pieces of at most maxBytes UTF-8 bytes, preferring spaces,
 * never inside a character (protocol.split_text, code point for code point).
 */
export function splitText(text, maxBytes = TEXT_BYTES) {
  let chars = Array.from(text);
  const pieces = [];
  const bytes = (ch) => utf8Length(ch);
  while (chars.reduce((n, ch) => n + bytes(ch), 0) > maxBytes) {
    let cut = 0;
    let size = 0;
    for (let i = 0; i < chars.length; i++) {
      size += bytes(chars[i]);
      if (size > maxBytes) break;
      cut = i + 1;
    }
    if (cut === 0) cut = 1; // a limit smaller than one character: never loop forever
    const head = chars.slice(0, cut);
    const space = head.lastIndexOf(" ");
    if (space > Math.floor(cut / 2)) cut = space;
    pieces.push(chars.slice(0, cut).join(""));
    chars = chars.slice(cut);
    if (space === cut) while (chars[0] === " ") chars.shift();
  }
  if (chars.length || pieces.length === 0) pieces.push(chars.join(""));
  return pieces;
}

// mIRC formatting: bold, italics, underline, strike, monospace, reverse, reset,
// and colours (\x03 with up to two numbers, \x04 with hex). Shown as plain text.
const FORMATTING = /\x03(\d{1,2}(,\d{1,2})?)?|\x04([0-9a-fA-F]{6}(,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]/g;

// Other control characters would show as boxes; a tab reads as a space.
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;

export function stripFormatting(text) {
  return text.replace(FORMATTING, "").replace(/\t/g, " ").replace(CONTROLS, "");
}

/** The text of a CTCP ACTION (/me), or null when text is not one. */
export function actionText(text) {
  const match = /^\x01ACTION(?: (.*?))?\x01?$/s.exec(text);
  return match ? match[1] ?? "" : null;
}

/** Whether text is some other CTCP request (VERSION, PING...), which the page ignores. */
export function isCtcp(text) {
  return text.startsWith("\x01");
}

/** When the line was sent: its server-time tag, or now. */
export function messageTime(msg) {
  const stamp = msg.tags?.time;
  if (stamp) {
    const date = new Date(stamp);
    if (!Number.isNaN(date.getTime())) return date;
  }
  return new Date();
}
