// "New since you were last here": where the user last read each room, kept in this
// browser (localStorage, per server address and room), and where the divider goes.
//
// Model only, over the plain line objects of model.js; no DOM. The server
// offers no draft/read-marker; if it did, the mark would be synced through
// MARKREAD (read-marker) instead, and shared by the user's other clients.

const PREFIX = "lobby.read";
const SAID = ["message", "action", "notice"];

/** {time, msgid} of a said line, or null for other lines. */
export function markOf(line) {
  if (!line || !SAID.includes(line.kind)) return null;
  const time = line.time instanceof Date ? line.time.getTime() : Number.NaN;
  return Number.isFinite(time) ? { time, msgid: line.msgid ?? "" } : null;
}

/** Whether mark a comes after b (null is before everything). */
export function isAfter(a, b) {
  if (!a) return false;
  if (!b) return true;
  return a.time > b.time && (!a.msgid || a.msgid !== b.msgid);
}

/** The newest mark among lines, or null. */
export function newestMark(lines) {
  let best = null;
  for (const line of lines) {
    const mark = markOf(line);
    if (mark && (!best || mark.time >= best.time)) best = mark;
  }
  return best;
}

/** The first line said after since (not by us), or null: the divider goes above it. */
export function firstNewLine(lines, since) {
  if (!since) return null;
  return lines.find((line) => !line.self && isAfter(markOf(line), since)) ?? null;
}

/** Last-read marks in storage (null: not kept), one key per server address and room. */
export class ReadMarks {
  constructor(storage, server) {
    this.storage = storage;
    this.server = server;
  }

  key(room) {
    return `${PREFIX} ${this.server} ${room}`;
  }

  get(room) {
    try {
      const mark = JSON.parse(this.storage?.getItem(this.key(room)) ?? "null");
      return mark && Number.isFinite(mark.time) ? { time: mark.time, msgid: String(mark.msgid ?? "") } : null;
    } catch {
      return null;
    }
  }

  set(room, mark) {
    try {
      this.storage?.setItem(this.key(room), JSON.stringify(mark));
    } catch {
      // not kept for next time; this visit still has it
    }
  }
}
