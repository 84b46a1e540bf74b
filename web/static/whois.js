// What the name menu's "Details" tell about someone, from the replies to one WHOIS.
//
// Model only, no DOM: whoisReply() folds the replies (311 user, 317 idle and signon,
// 319 rooms, 301 away) into a plain object, and detailLines() turns it into the
// [{label, value}] the menu draws as text.

import { parseNamesWord } from "./modes.js";

/** Nothing known yet about nick. */
export function emptyWhois(nick) {
  return { nick, realname: null, signon: null, idle: null, away: null, rooms: [] };
}

/** details with one WHOIS reply (command, params as received) added; other replies change nothing. */
export function whoisReply(details, command, params, prefix) {
  if (command === "311") return { ...details, realname: params.at(-1) ?? "" };
  if (command === "317") {
    // 317 <me> <nick> <idle seconds> <signon unix time> :seconds idle, signon time
    const idle = Number.parseInt(params[2] ?? "", 10);
    const signon = Number.parseInt(params[3] ?? "", 10);
    return {
      ...details,
      idle: Number.isFinite(idle) ? idle : null,
      signon: Number.isFinite(signon) && params.length > 4 ? signon : null,
    };
  }
  if (command === "319") {
    const words = (params.at(-1) ?? "").split(" ").filter(Boolean);
    return { ...details, rooms: [...details.rooms, ...words.map((w) => parseNamesWord(w, prefix).nick)] };
  }
  if (command === "301") return { ...details, away: params.at(-1) ?? "" };
  return details;
}

/** "under a minute", "5 minutes", "2 hours 3 minutes", "3 days 4 hours". */
export function idleText(seconds) {
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  const unit = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (minutes < 1) return "under a minute";
  if (hours < 1) return unit(minutes, "minute");
  if (days < 1) return [unit(hours, "hour"), minutes % 60 ? unit(minutes % 60, "minute") : ""].filter(Boolean).join(" ");
  return [unit(days, "day"), hours % 24 ? unit(hours % 24, "hour") : ""].filter(Boolean).join(" ");
}

/**
 * The lines the menu shows: [{label, value}]. myRooms are the names of the rooms we are in;
 * fold compares names as the server does; dateText formats a Date (the local date and time).
 */
export function detailLines(details, myRooms, fold, dateText = (d) => d.toLocaleString()) {
  const lines = [];
  if (details.realname) lines.push({ label: "Real name", value: details.realname });
  if (details.signon !== null) lines.push({ label: "Connected since", value: dateText(new Date(details.signon * 1000)) });
  if (details.idle !== null) lines.push({ label: "Idle", value: idleText(details.idle) });
  if (details.away !== null) lines.push({ label: "Away", value: details.away || "yes" });
  const theirs = new Set(details.rooms.map(fold));
  const shared = myRooms.filter((room) => theirs.has(fold(room)));
  lines.push({ label: "Rooms you share", value: shared.length ? shared.join(", ") : "none" });
  return lines;
}
