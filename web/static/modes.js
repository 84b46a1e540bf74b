// Room ranks and modes for the page: PREFIX and CHANMODES from 005, NAMES words,
// MODE changes, and the sentences people read about them and about refusals.
//
// Pure, like irc.js: strings in, plain objects and strings out. No DOM, no
// sockets; chat.js keeps the state and view.js draws it.

import { fold } from "./irc.js";

// What a server that doesn't say (no PREFIX/CHANMODES in 005) is taken to have.
export const DEFAULT_PREFIX = { modes: "ov", symbols: "@+" };
export const DEFAULT_CHANMODES = { list: "bq", always: "k", whenSet: "l", flags: "Dimnstu" };

/** PREFIX=(ov)@+ as {modes: "ov", symbols: "@+"}; null when the value can't be read. */
export function parsePrefix(value) {
  const match = /^\(([^)]*)\)(.*)$/.exec(value ?? "");
  if (!match || match[1].length !== match[2].length) return null;
  return { modes: match[1], symbols: match[2] };
}

/** CHANMODES=A,B,C,D: list modes, modes with an argument always, only when set, and flags. */
export function parseChanModes(value) {
  const [list = "", always = "", whenSet = "", flags = ""] = (value ?? "").split(",");
  return { list, always, whenSet, flags };
}

/** The ISUPPORT tokens of one 005 line that the page uses, as {prefix?, chanmodes?}. */
export function readIsupport(params) {
  const found = {};
  for (const token of params.slice(1, -1)) {
    const [name, value = ""] = token.split("=", 2);
    if (name === "PREFIX") found.prefix = parsePrefix(value) ?? DEFAULT_PREFIX;
    if (name === "CHANMODES") found.chanmodes = parseChanModes(value);
  }
  return found;
}

/**
 * One word of a NAMES reply ("@+alice", "+bob!u@h" with userhost-in-names) as
 * {nick, ranks}: ranks are the mode letters of its prefixes, highest first ("ov").
 */
export function parseNamesWord(word, prefix = DEFAULT_PREFIX) {
  let i = 0;
  let ranks = "";
  while (i < word.length && prefix.symbols.includes(word[i])) {
    ranks += prefix.modes[prefix.symbols.indexOf(word[i])];
    i++;
  }
  const rest = word.slice(i);
  const bang = rest.indexOf("!");
  return { nick: bang < 0 ? rest : rest.slice(0, bang), ranks: sortRanks(ranks, prefix) };
}

/** Rank letters in the server's order (highest first), each once. */
export function sortRanks(ranks, prefix = DEFAULT_PREFIX) {
  return [...prefix.modes].filter((m) => ranks.includes(m)).join("");
}

/** The symbol of someone's highest rank ("@", "+"), or "". */
export function rankSymbol(ranks, prefix = DEFAULT_PREFIX) {
  const top = sortRanks(ranks, prefix)[0];
  return top ? prefix.symbols[prefix.modes.indexOf(top)] : "";
}

/**
 * A MODE's mode string and arguments as [{add, mode, arg}], each change on its own.
 * prefix and chanmodes say which letters take an argument.
 */
export function parseModeChanges(modestring, args, prefix = DEFAULT_PREFIX, chanmodes = DEFAULT_CHANMODES) {
  const changes = [];
  const rest = [...args];
  let add = true;
  for (const mode of modestring) {
    if (mode === "+" || mode === "-") {
      add = mode === "+";
      continue;
    }
    const takesArg = prefix.modes.includes(mode) || chanmodes.list.includes(mode) ||
      chanmodes.always.includes(mode) || (add && chanmodes.whenSet.includes(mode));
    changes.push({ add, mode, arg: takesArg ? rest.shift() ?? null : null });
  }
  return changes;
}

/** A ban or quiet mask for a nick: a bare nick means nick!*@*; a mask stays as it is. */
export function maskFor(target) {
  return /[!@*?]/.test(target) ? target : `${target}!*@*`;
}

/** How a mask reads: "bob" for bob!*@*, the mask itself otherwise. */
export function maskName(mask) {
  const match = /^([^!@*?]+)!\*@\*$/.exec(mask ?? "");
  return match ? match[1] : mask ?? "";
}

/** Whether a nick!user@host matches a mask with * and ? wildcards (casefolded). */
export function maskMatches(mask, source) {
  const pattern = fold(maskFor(mask)).replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${pattern}$`, "su").test(fold(source));
}

// What a flag, key or limit change means, said after "alice ".
const ROOM_WORDS = {
  m: ["set the room to moderated (only operators and voiced people speak)", "set the room to unmoderated (everyone speaks)"],
  t: ["locked the topic (only operators change it)", "unlocked the topic (anyone here may change it)"],
  i: ["made the room invite-only", "made the room open to anyone (no invitation needed)"],
  s: ["made the room secret (hidden from the room list)", "made the room visible in the room list"],
  n: ["closed the room to messages from outside", "opened the room to messages from outside"],
  k: ["set a key on the room (needed to join)", "removed the room's key"],
  D: ["made joins show only when people first speak", "made joins show at once"],
  u: ["made the room an auditorium (only operators and voiced people see everyone)", "made everyone in the room visible to everyone"],
};

/**
 * One MODE change on a room as a sentence about it, from where the reader
 * stands: actor did it, self is the reader's nick. {text, selfBanned} where
 * selfBanned says the change is a ban that matches the reader.
 */
export function describeChange(actor, { add, mode, arg }, self = "") {
  const who = (nick) => (nick && fold(nick) === fold(self) ? "you" : nick);
  const subject = fold(actor) === fold(self) ? "You" : actor;
  switch (mode) {
    case "o":
      return add ? `${subject} made ${who(arg)} an operator` : `${subject} removed ${who(arg)} as an operator`;
    case "v":
      return add ? `${subject} gave ${who(arg)} voice` : `${subject} took voice from ${who(arg)}`;
    case "q":
      return add ? `${subject} muted ${who(maskName(arg))}` : `${subject} unmuted ${who(maskName(arg))}`;
    case "b":
      return add ? `${subject} banned ${who(maskName(arg))}` : `${subject} lifted the ban on ${who(maskName(arg))}`;
    case "l":
      return add ? `${subject} limited the room to ${arg} people` : `${subject} removed the room's member limit`;
    default: {
      const words = ROOM_WORDS[mode];
      if (words) return `${subject} ${words[add ? 0 : 1]}`;
      return `${subject} set mode ${add ? "+" : "-"}${mode}${arg ? ` ${arg}` : ""}`;
    }
  }
}

/** A room's flags, key and limit from a 324 reply or a MODE, as plain data. */
export function emptyRoomModes() {
  return { flags: new Set(), key: null, limit: null };
}

/** Apply one change to a room's modes (ranks and lists are kept elsewhere); true if it was one of these. */
export function applyRoomMode(modes, { add, mode, arg }, chanmodes = DEFAULT_CHANMODES) {
  if (mode === "k") modes.key = add ? arg ?? "" : null;
  else if (mode === "l") modes.limit = add ? Number(arg) || null : null;
  else if (chanmodes.flags.includes(mode)) {
    if (add) modes.flags.add(mode);
    else modes.flags.delete(mode);
  } else return false;
  return true;
}

/** The text in a refusal's parentheses: "Cannot send to channel (you are muted)" -> "you are muted". */
function why(text) {
  return /\(([^)]*)\)\s*$/.exec(text ?? "")?.[1] ?? "";
}

// Refusals as sentences: each gets the numeric's parameters after our nick and its text.
const REFUSALS = {
  482: ([room], text) => /topic/i.test(text)
    ? `Only operators of ${room} can change its topic.`
    : `You need to be an operator of ${room} to do that.`,
  404: ([room], text) => {
    const reason = why(text);
    if (/moderated/i.test(reason)) return `You can't speak in ${room}: it is moderated, and only operators and voiced people speak.`;
    if (/banned/i.test(reason)) return `You can't speak in ${room}: you are banned from it.`;
    if (/muted/i.test(reason)) return `You can't speak in ${room}: you are muted there.`;
    if (/join/i.test(reason)) return `You can't speak in ${room}: join it first.`;
    return `You can't speak in ${room}${reason ? `: ${reason}` : ""}.`;
  },
  473: ([room]) => `${room} is invite-only: an operator of it has to /invite you first.`,
  474: ([room]) => `You are banned from ${room}: you can't join it.`,
  475: ([room]) => `${room} needs a key to join: /join ${room} KEY.`,
  471: ([room]) => `${room} is full: it has reached its member limit.`,
  441: ([nick, room]) => `${nick} isn't in ${room}.`,
  442: ([room]) => `You aren't in ${room}.`,
  443: ([nick, room]) => `${nick} is already in ${room}.`,
  478: ([room, mode]) => `The ${mode === "q" ? "mute" : "ban"} list of ${room} is full.`,
  481: () => "Only server operators can do that.",
  464: () => "That operator name or password is not right.",
  472: ([mode]) => `“${mode}” is not a mode this server knows.`,
  525: ([room]) => `That key can't be used in ${room}: 1 to 23 characters, no spaces or commas.`,
  696: ([room, mode, value]) => mode === "l"
    ? `The member limit of ${room} must be a number (not “${value}”).`
    : `“${value}” can't be used for mode ${mode} in ${room}.`,
  401: ([nick]) => `Nobody is called ${nick} right now.`,
  403: ([room]) => `There is no room called ${room}.`,
};

/** A refusal numeric as a sentence, or null when the page has none for it. */
export function explainRefusal(msg) {
  const sentence = REFUSALS[msg.command];
  if (!sentence) return null;
  const params = msg.params.slice(1);
  return sentence(params.slice(0, -1), params.at(-1) ?? "");
}
