// Wiring only: the name form, the message box and the connection meet here.
// The logic lives in connection.js, chat.js (with handlers.js and the model, model.js),
// commands.js, composer.js, shortcuts.js, and the views (view.js, logview.js, render.js).

import { Chat } from "./chat.js";
import { Composer } from "./composer.js";
import { EmojiCompleter, PICKER_EMOJI, insertAtCaret } from "./emoji.js";
import { Connection, bridgeUrl } from "./connection.js";
import { fold, isValidNick } from "./irc.js";
import { ReadMarks } from "./lastread.js";
import { Notifier } from "./notify.js";
import { applySettings, loadSettings, saveSettings } from "./settings.js";
import { SettingsDialog } from "./settingsdialog.js";
import { installShortcuts } from "./shortcuts.js";
import { SignIn } from "./signin.js";
import { Uploader } from "./upload.js";
import { View } from "./view.js";

const NAME_KEY = "lobby.name";
const view = new View(document);
let conn = null;
let chat = null;

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null; // storage can be off
  }
}

let settings = loadSettings(storage());
const notifier = new Notifier(window, () => settings);
const settingsDialog = new SettingsDialog(document, notifier);
// Files go to the room open when they were added; their URL is said there.
const uploader = new Uploader(document, {
  target: () => chat?.active?.name ?? null,
  send: (target, url) => chat?.sendText(target, url, false),
});

/** Settings take effect at once, and are kept for the next visit. */
function useSettings(next) {
  settings = next;
  saveSettings(storage(), settings);
  applySettings(document, settings);
  view.setClock(settings.clock);
  if (chat) chat.settings = settings;
}

applySettings(document, settings);
view.setClock(settings.clock);
settingsDialog.onChange = useSettings;
// Browsers let audio start only after a click or key press: after a reload, the first one
// in the page makes the notification tone ready again (Join counts).
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => {
    if (settings.sound && settings.notify) notifier.unlockSound();
  }, { passive: true });
}

function remembered() {
  try {
    return localStorage.getItem(NAME_KEY) ?? "";
  } catch {
    return ""; // storage can be off (private windows, strict settings)
  }
}

function remember(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // not remembered next time; nothing else depends on it
  }
}

function explainNickError({ code, nick, text }) {
  if (code === "433") return `The name “${nick}” is taken right now. Please choose another.`;
  if (code === "432") {
    return `“${nick}” can't be used as a name: use letters (any script), digits or _-[]\\\`^{}|, ` +
      "not starting with a digit or -, at most 30 characters.";
  }
  return text || "Please choose a name.";
}

const STATUS_TEXT = {
  idle: "not connected",
  connecting: "connecting…",
  registering: "joining…",
  online: "online",
  closed: "offline",
};

function onState({ state, delay }) {
  if (state === "reconnecting") {
    const seconds = Math.max(1, Math.round((delay ?? 0) / 1000));
    view.setStatus(state, delay === undefined ? "reconnecting…" : `reconnecting… (next try in ${seconds} s)`);
    return;
  }
  view.setStatus(state, STATUS_TEXT[state] ?? state);
}

function connect(name, password, rooms = []) {
  conn = new Connection(bridgeUrl(window.location), name);
  conn.password = password;
  for (const room of rooms) conn.rooms.set(fold(room), room); // rejoined once in (signin.js)
  chat = new Chat(conn, view, document);
  chat.settings = settings;
  chat.notifier = notifier;
  chat.readMarks = new ReadMarks(storage(), location.host); // the server is the bridge this page came from
  uploader.watch(conn);
  let wasOnline = false;
  conn.addEventListener("state", (event) => {
    onState(event.detail);
    if (event.detail.state === "reconnecting" && !conn.everRegistered && conn.lastError) {
      // Never got in: say why, on the form, while trying again.
      view.showNameError(`Couldn't join yet (${conn.lastError}). Trying again…`);
      conn.lastError = "";
    }
    if (event.detail.state === "reconnecting" && wasOnline) {
      wasOnline = false;
      chat.onDisconnected();
      chat.info("Disconnected. Reconnecting…");
    }
  });
  conn.addEventListener("message", (event) => chat.handle(event.detail.msg));
  conn.addEventListener("registered", (event) => {
    wasOnline = true;
    remember(event.detail.nick);
    view.showChat();
  });
  conn.addEventListener("nick", (event) => remember(event.detail.nick));
  conn.addEventListener("nickerror", (event) => {
    if (conn.everRegistered) {
      // Our name was taken while we were away: take a variant rather than stop.
      conn.setNick(`${event.detail.nick}_`.slice(0, 30));
      return;
    }
    if (signin.nickRefused(event.detail)) return;
    view.showJoin();
    view.showNameError(explainNickError(event.detail));
    // Not "joining…" any more: the server waits for another name.
    view.setStatus("idle", "choose another name");
  });
  conn.addEventListener("passworderror", (event) => {
    view.showJoin();
    view.askPassword(event.detail.retry ? "That password is not right. Please try again." :
      "This chat needs a password.");
  });
  conn.start();
  signin.setChat(chat);
}

/** Connect afresh as name (signin.js): the WebSocket's handshake carries the sign-in cookie. */
function start(name, rooms) {
  view.setJoining(true);
  if (conn === null) {
    connect(name, view.password, rooms);
    return conn;
  }
  conn.nick = name;
  conn.password = view.password;
  for (const room of rooms) conn.rooms.set(fold(room), room);
  conn.restart();
  return conn;
}

function tabStorage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

const signin = new SignIn(document, {
  storage: storage(), tabStorage: tabStorage(), server: location.host, start, remembered,
});

view.nameInput.value = remembered();
view.nameInput.focus();
signin.begin(); // signed in: straight into the chat; a guest's reload: back in under the same name

view.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = view.nameInput.value.trim();
  if (!isValidNick(name)) {
    view.showNameError(explainNickError({ code: name ? "432" : "431", nick: name, text: "Please enter a name." }));
    return;
  }
  view.showNameError("");
  view.setJoining(true);
  if (conn === null) {
    connect(name, view.password);
    signin.attach(conn);
  }
  else if (conn.state === "closed" || conn.needsPassword) {
    conn.nick = name;
    conn.password = view.password;
    conn.restart();
  } else {
    conn.setNick(name);
    if (!conn.registered) view.setStatus("registering", STATUS_TEXT.registering);
  }
});

// Rich messages (#18): ":shortcode:" completion, the emoji picker, the reply chip, typing
// notices and search; the logic is in emoji.js, replies.js, typing.js, search.js and chat.js.
// The bundled emoji font is fetched now, before any emoji is drawn: text drawn while it is
// still loading may keep an empty box in Chromium (its unicode-range alone would fetch it late).
document.fonts?.load('1em "Lobby Emoji"', "😀").catch(() => {});
const emojiCompleter = new EmojiCompleter(view.input, document.getElementById("emoji-complete"));
const emojiButton = document.getElementById("emoji-button");
emojiButton.addEventListener("click", () => {
  view.emojiPicker.open(emojiButton, PICKER_EMOJI, (emoji) => insertAtCaret(view.input, emoji), "Insert emoji");
});
view.input.addEventListener("input", () => chat?.typingInput(view.input.value));
view.searchPanel.onSearch = (query) => chat !== null && chat.search(query);
view.searchPanel.onPick = (result) => chat?.openResult(result);
document.getElementById("search-button").addEventListener("click", (event) => chat?.openSearch("", event.currentTarget));

const composer = new Composer(view.input, {
  send: (text) => chat !== null && chat.submit(text),
  names: () => chat?.completionNames() ?? [],
  // /oper carries a password: Up must never bring it back.
  remember: (text) => !/^\/oper\b/i.test(text.trim()),
  keys: (event) => {
    if (emojiCompleter.keyDown(event)) return true;
    if (event.key !== "Escape" || view.replyChip.target === null) return false;
    view.replyChip.clear();
    return true;
  },
});
view.composer.addEventListener("submit", (event) => {
  event.preventDefault(); // the Send button
  composer.submit();
});

view.retryButton.addEventListener("click", () => conn?.retryNow());
document.getElementById("settings-button").addEventListener("click", () => settingsDialog.open(settings, chat?.active ?? null));
view.browseButton.addEventListener("click", () => chat?.browseRooms());
view.roomBrowser.onJoin = (room) => {
  chat?.joinRoom(room);
  view.input.focus();
};
view.jumpButton.addEventListener("click", () => chat?.jumpToLatest());
view.roomSettingsButton.addEventListener("click", () => chat?.openRoomSettings());
view.peopleToggle.addEventListener("click", () => view.setPeopleOpen(!view.peopleOpen));
view.peopleClose.addEventListener("click", () => view.setPeopleOpen(false));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && view.peopleOpen) view.setPeopleOpen(false);
});
document.addEventListener("visibilitychange", () => chat?.onVisibilityChange());
installShortcuts(document, {
  step: (offset) => chat?.stepConversation(offset) ?? false,
  search: () => {
    if (chat === null || view.chat.hidden) return false;
    chat.openSearch();
    return true;
  },
});
// Scrolling to the top of a room loads older lines; so does a wheel turned
// upwards when there is nothing to scroll yet.
view.messages.addEventListener("scroll", () => chat?.onScroll(), { passive: true });
view.messages.addEventListener("wheel", (event) => {
  if (event.deltaY < 0) chat?.onScroll();
}, { passive: true });
