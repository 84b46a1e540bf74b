// The page's settings: a plain object kept in this browser (localStorage), and
// how they show on the document (attributes on <html> that style.css reads).
//
// No dialog code here (settingsdialog.js draws and edits them) and no chat
// logic: chat.js and notify.js only read the object.

const KEY = "lobby.settings";

export const DEFAULTS = Object.freeze({
  theme: "system", // "system" | "light" | "dark"
  clock: "auto", // "auto" (as the browser's language has it) | "24" | "12"
  compact: false,
  showEvents: true, // joins, parts, quits and nick changes
  wideColors: false, // 18 hues instead of the terminal's 8
  sendTyping: true, // tell others when we are typing (+typing TAGMSG)
  notify: false, // desktop notifications for mentions and private messages
  sound: false, // a short tone with each notification
  quietRooms: [], // folded room names whose notifications are off
});

/** The settings in storage, with defaults for whatever is missing or malformed. */
export function loadSettings(storage) {
  let saved = {};
  try {
    saved = JSON.parse(storage?.getItem(KEY) ?? "{}") ?? {};
  } catch {
    saved = {}; // storage off, or not ours: the defaults
  }
  const settings = { ...DEFAULTS, quietRooms: [] };
  for (const [name, value] of Object.entries(DEFAULTS)) {
    if (Array.isArray(value) ? Array.isArray(saved[name]) : typeof saved[name] === typeof value) settings[name] = saved[name];
  }
  if (!["system", "light", "dark"].includes(settings.theme)) settings.theme = DEFAULTS.theme;
  if (!["auto", "12", "24"].includes(settings.clock)) settings.clock = DEFAULTS.clock;
  return settings;
}

export function saveSettings(storage, settings) {
  try {
    storage?.setItem(KEY, JSON.stringify(settings));
  } catch {
    // not kept for next time; this visit still uses them
  }
}

/** Whether notifications from this room are switched off. */
export function isRoomQuiet(settings, key) {
  return settings.quietRooms.includes(key);
}

/** A copy of settings with the room's notifications on or off. */
export function withRoomQuiet(settings, key, quiet) {
  const rest = settings.quietRooms.filter((room) => room !== key);
  return { ...settings, quietRooms: quiet ? [...rest, key] : rest };
}

/** The settings as attributes on <html>: style.css does the rest. */
export function applySettings(doc, settings) {
  const root = doc.documentElement;
  if (settings.theme === "system") delete root.dataset.theme;
  else root.dataset.theme = settings.theme;
  root.toggleAttribute("data-compact", settings.compact);
  root.toggleAttribute("data-hide-events", !settings.showEvents);
  root.toggleAttribute("data-wide-colors", settings.wideColors);
}
