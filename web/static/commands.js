// The /commands, in one table (the terminal client has the same ones).
//
// Each entry has its usage, a one-line summary and a run(ctx, args) that talks
// to the chat only through ctx: ctx.target (the open room or conversation),
// ctx.send(command, ...params), ctx.say(target, text), ctx.act(target, text),
// ctx.openQuery(nick), ctx.switchTo(name) (false if not open), ctx.join(room),
// ctx.close(name), ctx.browseRooms(filter), ctx.askTopic(room), ctx.setAway(reason),
// ctx.quit(reason), ctx.help(groups, tips), ctx.search(query), ctx.info(text) and ctx.error(text);
// for running a room, ctx.isOperator (of the open room, or a server operator),
// ctx.askModes(room) and ctx.askList(room, "b"|"q").
// Its group says where /help lists it; "Operators" only to operators.

import { isValidChannel, isValidNick } from "./irc.js";
import { maskFor } from "./modes.js";

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
const OPERATOR_GROUP = "Operators";
// At most this many changes in one MODE (the server's MODES=6).
const MODES_MAX = 6;

/** MODE changes of one letter for each name: "/op bob carol" is MODE #room +oo bob carol. */
function changeEach(sign, mode, what) {
  return {
    usage: `/${what.name} NAME…`,
    summary: what.summary,
    group: OPERATOR_GROUP,
    run(ctx, args) {
      const room = needRoom(ctx);
      if (!room) return;
      const names = args.trim().split(/\s+/).filter(Boolean);
      if (names.length === 0) return ctx.error(`Usage: /${what.name} NAME…`);
      for (let i = 0; i < names.length; i += MODES_MAX) {
        const chunk = names.slice(i, i + MODES_MAX).map(what.arg ?? ((n) => n));
        ctx.send("MODE", room, sign + mode.repeat(chunk.length), ...chunk);
      }
    },
  };
}
const HELP_TIPS = [
  "Tab completes a name, ↑ brings back what you sent, Shift+Enter starts a new line.",
  "Start a message with // to send a line that begins with /.",
  "Alt+↑ and Alt+↓ go to the previous and next room or conversation; Escape closes a dialog or menu.",
  "Ctrl+K (or / outside the message box) searches messages; filters: from:NAME in:#ROOM before:DATE after:DATE.",
  "Type :smi for emoji (↑/↓ and Tab or Enter to pick); point at a message (or ↑/↓ in the log, then Tab) to reply or react.",
];

export const COMMANDS = {
  help: {
    usage: "/help",
    summary: "show this card",
    group: "You",
    run(ctx) {
      const titles = ctx.isOperator ? [...HELP_GROUPS, OPERATOR_GROUP] : HELP_GROUPS;
      const groups = titles.map((title) => ({
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
  search: {
    usage: "/search WORDS",
    summary: "search the messages of your rooms (Ctrl+K)",
    group: "Talking",
    run(ctx, args) {
      ctx.search(args.trim());
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
    usage: "/join #ROOM [KEY]",
    summary: "join a room, or make one",
    group: "Rooms",
    run(ctx, args) {
      const [name, rest] = firstWord(args);
      if (!name) return ctx.error("Usage: /join #ROOM [KEY]");
      const room = roomName(name);
      if (!isValidChannel(room)) return ctx.error(`“${room}” can't be a room name: # then no spaces or commas.`);
      const [key] = firstWord(rest);
      ctx.join(room, key); // already there: just opens it
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
  oper: {
    usage: "/oper NAME PASSWORD",
    summary: "become a server operator",
    group: "You",
    run(ctx, args) {
      const [name, password] = firstWord(args);
      if (!name || !password) return ctx.error("Usage: /oper NAME PASSWORD");
      ctx.send("OPER", name, password); // never shown: the answer says whether it worked
    },
  },
  op: changeEach("+", "o", { name: "op", summary: "make someone an operator" }),
  deop: changeEach("-", "o", { name: "deop", summary: "take operator away" }),
  voice: changeEach("+", "v", { name: "voice", summary: "let someone speak when moderated" }),
  devoice: changeEach("-", "v", { name: "devoice", summary: "take voice away" }),
  quiet: changeEach("+", "q", { name: "quiet", summary: "mute someone (or a mask)", arg: maskFor }),
  unquiet: changeEach("-", "q", { name: "unquiet", summary: "unmute", arg: maskFor }),
  ban: changeEach("+", "b", { name: "ban", summary: "ban someone (or a mask)", arg: maskFor }),
  unban: changeEach("-", "b", { name: "unban", summary: "lift a ban", arg: maskFor }),
  kick: {
    usage: "/kick NAME [REASON]",
    summary: "remove someone from the room",
    group: OPERATOR_GROUP,
    run(ctx, args) {
      const room = needRoom(ctx);
      if (!room) return;
      const [nick, reason] = firstWord(args);
      if (!nick) return ctx.error("Usage: /kick NAME [REASON]");
      ctx.send("KICK", room, nick, ...(reason.trim() ? [reason.trim()] : []));
    },
  },
  invite: {
    usage: "/invite NAME [#ROOM]",
    summary: "invite someone in",
    group: OPERATOR_GROUP,
    run(ctx, args) {
      const [nick, rest] = firstWord(args);
      const [named] = firstWord(rest);
      const room = named ? roomName(named) : needRoom(ctx);
      if (!room) return;
      if (!nick) return ctx.error("Usage: /invite NAME [#ROOM]");
      ctx.send("INVITE", nick, room);
    },
  },
  moderate: {
    usage: "/moderate [on|off]",
    summary: "only @ and + speak",
    group: OPERATOR_GROUP,
    run(ctx, args) {
      const room = needRoom(ctx);
      if (!room) return;
      const [word] = firstWord(args);
      const choice = (word || "on").toLowerCase();
      if (choice !== "on" && choice !== "off") return ctx.error("Usage: /moderate [on|off]");
      ctx.send("MODE", room, choice === "on" ? "+m" : "-m");
    },
  },
  mode: {
    usage: "/mode [#ROOM] [CHANGES]",
    summary: "show or change modes (+t +m +i +k +l, b, q)",
    group: OPERATOR_GROUP,
    run(ctx, args) {
      const words = args.trim().split(/\s+/).filter(Boolean);
      let target;
      if (words[0]?.startsWith("#")) target = words.shift();
      else if (words.length >= 2 && !/^[+-]/.test(words[0])) target = words.shift(); // a user's modes
      else target = needRoom(ctx);
      if (!target) return;
      if (words.length === 0) return target.startsWith("#") ? ctx.askModes(target) : ctx.send("MODE", target);
      if (target.startsWith("#") && words.length === 1 && /^[bq]$/.test(words[0])) return ctx.askList(target, words[0]);
      ctx.send("MODE", target, ...words);
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

const ALIASES = {
  j: "join", leave: "part", query: "msg", m: "msg", action: "me", exit: "quit",
  mute: "quiet", unmute: "unquiet",
};

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
