// "New since you were last here": where the user last read each room, kept in this
// browser (localStorage, per server address and room), and where the divider goes.
//
// Model only, no DOM beyond reading the lines' data-at and data-msgid. The server
// offers no draft/read-marker; if it did, the mark would be synced through
// MARKREAD (read-marker) instead, and shared by the user's other clients.

const PREFIX = "lobby.read";
const SAID = ["message", "action", "notice"];

/** {time, msgid} of a said line (li with data-at), or null for other lines. */
export function markOf(li) {
  if (!SAID.some((kind) => li.classList.contains(kind))) return null;
  const time = li.dataset.at ? Number(li.dataset.at) : Date.parse(li.querySelector("time")?.dateTime ?? "");
  return Number.isFinite(time) ? { time, msgid: li.dataset.msgid ?? "" } : null;
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
  for (const li of lines) {
    const mark = markOf(li);
    if (mark && (!best || mark.time >= best.time)) best = mark;
  }
  return best;
}

/** The first line said after since (not by us), or null: the divider goes above it. */
export function firstNewLine(lines, since) {
  if (!since) return null;
  return lines.find((li) => !li.classList.contains("self") && isAfter(markOf(li), since)) ?? null;
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
