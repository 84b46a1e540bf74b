// Reactions (IRCv3 +draft/react on TAGMSG, with +draft/reply naming the message): what a
// line's reactions are in the model, and the tags that add or take one back.
//
// No DOM here: a line's reactions are a plain list [{emoji, nicks}] on its model object
// (model.js), drawn as chips by render.js. One nick counts once per emoji, however many
// times the same reaction arrives (live and again in a history replay).
// Taking a reaction back is +draft/unreact (ircv3-specifications#568), which the server
// relays and removes from its history.

import { fold } from "./irc.js";

/** The reactions the picker offers first. */
export const QUICK_REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "🙏"];

// A reaction is short text without controls (the server refuses anything else too).
const REACTION_MAX = 64;

/** What a message's tags say about a reaction: {reply, emoji, remove} or null. */
export function reactionOf(tags = {}) {
  const reply = tags["+draft/reply"];
  const emoji = tags["+draft/react"] ?? tags["+draft/unreact"];
  if (!reply || !emoji || emoji.length > REACTION_MAX || /[\x00-\x1f\x7f]/.test(emoji)) return null;
  return { reply, emoji, remove: tags["+draft/react"] === undefined };
}

/** The tags of our reaction (or of taking it back) to the message msgid. */
export function reactionTags(msgid, emoji, remove = false) {
  return remove ? { "+draft/unreact": emoji, "+draft/reply": msgid } : { "+draft/react": emoji, "+draft/reply": msgid };
}

/** Add nick's reaction to line (or take it back); true if the line changed. */
export function applyReaction(line, emoji, nick, remove = false) {
  const list = line.reactions ?? [];
  const entry = list.find((r) => r.emoji === emoji);
  const has = entry ? entry.nicks.some((n) => fold(n) === fold(nick)) : false;
  if (remove) {
    if (!has) return false;
    entry.nicks = entry.nicks.filter((n) => fold(n) !== fold(nick));
    line.reactions = list.filter((r) => r.nicks.length > 0);
    return true;
  }
  if (has) return false;
  if (entry) entry.nicks = [...entry.nicks, nick];
  else line.reactions = [...list, { emoji, nicks: [nick] }];
  return true;
}

/** Whether nick is among those who reacted with this entry's emoji. */
export function reactedBy(entry, nick) {
  return entry.nicks.some((n) => fold(n) === fold(nick));
}

/** What a screen reader hears for a chip: "👍 2: alice, bob". */
export function reactionLabel(entry) {
  return `${entry.emoji} ${entry.nicks.length}: ${entry.nicks.join(", ")}`;
}
