// The Settings dialog: draws the settings object into its controls and reports
// each change at once (onChange gets a new settings object). It keeps nothing
// itself; main.js saves and applies what it reports.

import { isRoomQuiet, withRoomQuiet } from "./settings.js";

const PERMISSION_TEXT = {
  granted: "This browser allows notifications from the chat.",
  denied: "This browser blocks notifications from the chat: allow them in its site settings.",
  default: "Notifications need this browser's permission first.",
  unsupported: "This browser can't show notifications.",
};

export class SettingsDialog {
  constructor(doc, notifier) {
    const $ = (id) => doc.getElementById(id);
    this.dialog = $("settings");
    this.notifier = notifier;
    this.compact = $("setting-compact");
    this.events = $("setting-events");
    this.colors = $("setting-colors");
    this.typing = $("setting-typing");
    this.notify = $("setting-notify");
    this.sound = $("setting-sound");
    this.roomNotify = $("setting-room-notify");
    this.roomName = $("setting-room-name");
    this.allow = $("notify-allow");
    this.state = $("notify-state");
    this.radios = [...this.dialog.querySelectorAll("input[type=radio]")];
    this.settings = null;
    this.room = null; // the open room {key, name}, or null
    this.onChange = () => {};

    for (const radio of this.radios) {
      radio.addEventListener("change", () => this.change({ [radio.name]: radio.value }));
    }
    this.compact.addEventListener("change", () => this.change({ compact: this.compact.checked }));
    this.events.addEventListener("change", () => this.change({ showEvents: this.events.checked }));
    this.colors.addEventListener("change", () => this.change({ wideColors: this.colors.checked }));
    this.typing.addEventListener("change", () => this.change({ sendTyping: this.typing.checked }));
    this.notify.addEventListener("change", async () => {
      // Switching notifications on is a click too: ask then if nobody has yet.
      if (this.notify.checked) await this.notifier.ask();
      this.change({ notify: this.notify.checked });
    });
    this.sound.addEventListener("change", () => {
      if (this.sound.checked) this.notifier.unlockSound();
      this.change({ sound: this.sound.checked });
    });
    this.roomNotify.addEventListener("change", () => {
      if (this.room) this.change(withRoomQuiet(this.settings, this.room.key, !this.roomNotify.checked));
    });
    this.allow.addEventListener("click", async () => {
      await this.notifier.ask();
      this.change({ notify: this.notifier.permission === "granted" ? true : this.settings.notify });
    });
  }

  change(part) {
    this.settings = { ...this.settings, ...part };
    this.render();
    this.onChange(this.settings);
  }

  open(settings, room) {
    this.settings = settings;
    this.room = room && room.kind === "room" ? room : null;
    this.render();
    this.dialog.showModal();
  }

  render() {
    const s = this.settings;
    for (const radio of this.radios) radio.checked = s[radio.name] === radio.value;
    this.compact.checked = s.compact;
    this.events.checked = s.showEvents;
    this.colors.checked = s.wideColors;
    this.typing.checked = s.sendTyping;
    this.notify.checked = s.notify;
    this.sound.checked = s.sound;
    this.sound.disabled = !s.notify;
    const permission = this.notifier.permission;
    this.state.textContent = PERMISSION_TEXT[permission];
    this.allow.hidden = permission !== "default";
    this.roomNotify.disabled = !this.room;
    this.roomNotify.checked = Boolean(this.room) && !isRoomQuiet(s, this.room.key);
    this.roomName.textContent = this.room ? this.room.name : "the open room";
  }
}
