// The /commands, in one table (the terminal client has the same ones).
//
// Each entry has its usage, a one-line summary and a run(ctx, args) that talks
// to the chat only through ctx: ctx.target (the open room or conversation),
// ctx.send(command, ...params), ctx.say(target, text), ctx.act(target, text),
// ctx.openQuery(nick), ctx.switchTo(name) (false if not open), ctx.join(room),
// ctx.close(name), ctx.browseRooms(filter), ctx.askTopic(room), ctx.setAway(reason),
// ctx.quit(reason), ctx.help(groups, tips), ctx.info(text) and ctx.error(text).
// Its group says where /help lists it.

import { isValidChannel, isValidNick } from "./irc.js";

function firstWord(args) {
  const match = /^(\S+)\s*(.*)$/s.exec(args.trim());
  return match ? [match[1], match[2]] : ["", ""];
}

function roomName(name) {
  return name.startsWith("#") ? name : "#" + name;
}

function needRoom(ctx) {
  if (ctx.target && ctx.target.startsWith("#")) return ctx.target;
  ctx.error("This works in a room: switch to one, or name it.");
  return null;
}

const HELP_GROUPS = ["Talking", "Rooms", "You"];
const HELP_TIPS = [
  "Tab completes a name, ↑ brings back what you sent, Shift+Enter starts a new line.",
  "Start a message with // to send a line that begins with /.",
];

export const COMMANDS = {
  help: {
    usage: "/help",
    summary: "show this card",
    group: "You",
    run(ctx) {
      const groups = HELP_GROUPS.map((title) => ({
        title,
        commands: Object.values(COMMANDS).filter((c) => c.group === title).map((c) => [c.usage, c.summary]),
      }));
      ctx.help(groups, HELP_TIPS);
    },
  },
  nick: {
    usage: "/nick NAME",
    group: "You",
    summary: "change your name",
    run(ctx, args) {
      const [nick] = firstWord(args);
      if (!nick) return ctx.error("Usage: /nick NAME");
      if (!isValidNick(nick)) {
        return ctx.error(`“${nick}” can't be a name: use letters, digits or _-[]\\\`^{}|, not starting with a digit or -, at most 30.`);
      }
      ctx.send("NICK", nick);
    },
  },
  me: {
    usage: "/me ACTION",
    summary: "an action: * you wave",
    group: "Talking",
    run(ctx, args) {
      if (!ctx.target) return ctx.error("Open a room or a conversation first.");
      if (!args.trim()) return ctx.error("Usage: /me ACTION");
      ctx.act(ctx.target, args.trim());
    },
  },
  msg: {
    usage: "/msg NAME TEXT",
    summary: "send a private message",
    group: "Talking",
    run(ctx, args) {
      const [target, text] = firstWord(args);
      if (!target || !text) return ctx.error("Usage: /msg NAME TEXT");
      if (!target.startsWith("#")) ctx.openQuery(target);
      ctx.say(target, text);
    },
  },
  join: {
    usage: "/join #ROOM",
    summary: "join a room, or make one",
    group: "Rooms",
    run(ctx, args) {
      const [name] = firstWord(args);
      if (!name) return ctx.error("Usage: /join #ROOM");
      const room = roomName(name);
      if (!isValidChannel(room)) return ctx.error(`“${room}” can't be a room name: # then no spaces or commas.`);
      ctx.join(room); // already there: just opens it
    },
  },
  list: {
    usage: "/list [FILTER]",
    summary: "browse the rooms",
    group: "Rooms",
    run(ctx, args) {
      ctx.browseRooms(args.trim());
    },
  },
  part: {
    usage: "/part [#ROOM] [REASON]",
    summary: "leave a room",
    group: "Rooms",
    run(ctx, args) {
      let [room, reason] = firstWord(args);
      if (!room.startsWith("#")) {
        reason = args.trim();
        room = needRoom(ctx);
        if (!room) return;
      }
      ctx.send("PART", room, ...(reason ? [reason] : []));
    },
  },
  topic: {
    usage: "/topic [TEXT]",
    summary: "show or set the topic",
    group: "Rooms",
    run(ctx, args) {
      const room = needRoom(ctx);
      if (!room) return;
      const text = args.trim();
      if (text) ctx.send("TOPIC", room, text);
      else ctx.askTopic(room);
    },
  },
  who: {
    usage: "/who [#ROOM|NAME]",
    summary: "who is here",
    group: "Rooms",
    run(ctx, args) {
      const [mask] = firstWord(args);
      const target = mask || needRoom(ctx);
      if (target) ctx.send("WHO", target);
    },
  },
  close: {
    usage: "/close [NAME]",
    summary: "close a conversation",
    group: "Talking",
    run(ctx, args) {
      const [name] = firstWord(args);
      ctx.close(name || null);
    },
  },
  away: {
    usage: "/away [REASON]",
    summary: "say you are away",
    group: "You",
    run(ctx, args) {
      ctx.setAway(args.trim() || "Away");
    },
  },
  back: {
    usage: "/back",
    summary: "you are back",
    group: "You",
    run(ctx) {
      ctx.setAway("");
    },
  },
  quit: {
    usage: "/quit [REASON]",
    summary: "leave the chat",
    group: "You",
    run(ctx, args) {
      ctx.quit(args.trim());
    },
  },
};

const ALIASES = { j: "join", leave: "part", query: "msg", m: "msg", action: "me", exit: "quit" };

/**
 * Act on one line the user typed: a /command, or text for the open room.
 * Returns false when the line was not understood (the hint is already shown).
 */
export function runInput(ctx, line) {
  if (!line.startsWith("/") || line.startsWith("//")) {
    const text = line.startsWith("//") ? line.slice(1) : line;
    if (!ctx.target) {
      ctx.error("Join a room first: /join #ROOM");
      return false;
    }
    ctx.say(ctx.target, text);
    return true;
  }
  const [word, args] = firstWord(line.slice(1));
  const name = word.toLowerCase();
  const command = COMMANDS[name] ?? COMMANDS[ALIASES[name]];
  if (!command) {
    ctx.error(`Unknown command /${word}. Type /help for the list.`);
    return false;
  }
  command.run(ctx, args);
  return true;
}
