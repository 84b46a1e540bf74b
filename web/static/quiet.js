// Less noise in the log: what a burst of comings and goings says in one line,
// and when a message continues the one before it (same person, soon after).
//
// Pure functions over plain data; chat.js keeps the bursts, view.js draws them.

import { fold } from "./irc.js";

// Messages from one person this close together sit under one name.
export const GROUP_GAP_MS = 5 * 60 * 1000;

// Parts and quits both read "left": for the room it is the same.
const WORDS = [
  [["join"], () => "joined"],
  [["part", "quit"], () => "left"],
  [["nick"], (n) => (n === 1 ? "changed name" : "changed names")],
];

/**
 * "3 joined, 2 left" for a burst of events [{kind: join|part|quit|nick, nick}].
 * A person counts once for each of the three.
 */
export function churnSummary(events) {
  const parts = [];
  for (const [kinds, word] of WORDS) {
    const people = new Set(events.filter((e) => kinds.includes(e.kind)).map((e) => fold(e.nick)));
    if (people.size) parts.push(`${people.size} ${word(people.size)}`);
  }
  return parts.join(", ");
}

/** Whether a message {nick, time, kind} continues prev (the line just before it), so its name needn't show again. */
export function continues(prev, next) {
  if (!prev || prev.kind !== "message" || next.kind !== "message") return false;
  if (fold(prev.nick) !== fold(next.nick)) return false;
  const gap = next.time - prev.time;
  return gap >= 0 && gap < GROUP_GAP_MS;
}
