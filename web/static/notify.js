// Desktop notifications: when one is due (a pure rule over the settings), and
// showing it with the browser's Notification API, plus an optional short tone
// made with the Web Audio API (no sound files).
//
// Permission is asked only from ask(), which the settings dialog calls on a
// click: never on load.

import { isRoomQuiet } from "./settings.js";

/**
 * Whether a line deserves a notification: notifications are on, the tab is hidden,
 * it mentions us or is a private message, and its room isn't switched off.
 */
export function shouldNotify({ settings, hidden, buffer, mention }) {
  if (!settings.notify || !hidden) return false;
  if (buffer.kind === "query") return true;
  return mention && !isRoomQuiet(settings, buffer.key);
}

export class Notifier {
  constructor(win, getSettings) {
    this.win = win;
    this.getSettings = getSettings;
    this.audio = null;
  }

  get supported() {
    return "Notification" in this.win;
  }

  /** "granted", "denied", "default", or "unsupported". */
  get permission() {
    return this.supported ? this.win.Notification.permission : "unsupported";
  }

  /** Ask the browser for permission (from a click); resolves to the answer. */
  async ask() {
    this.unlockSound(); // the same click lets a later tone play
    if (!this.supported) return "unsupported";
    if (this.permission !== "default") return this.permission;
    return this.win.Notification.requestPermission();
  }

  /** Audio may only start after a user gesture: make the context then. */
  unlockSound() {
    const Context = this.win.AudioContext ?? this.win.webkitAudioContext;
    if (!this.audio && Context) this.audio = new Context();
    if (this.audio?.state === "suspended") this.audio.resume().catch(() => {});
  }

  show({ title, body, tag, onClick }) {
    if (this.permission !== "granted") return;
    const notification = new this.win.Notification(title, { body: body.slice(0, 300), tag });
    notification.addEventListener("click", () => {
      this.win.focus();
      onClick();
      notification.close();
    });
    if (this.getSettings().sound) this.beep();
  }

  /** A soft two-note chime, a quarter of a second long. */
  beep() {
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    const now = audio.currentTime;
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.15, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
    for (const [freq, at] of [[880, 0], [1320, 0.09]]) {
      const osc = audio.createOscillator();
      osc.type = "sine";
      osc.frequency.setValueAtTime(freq, now + at);
      osc.connect(gain);
      osc.start(now + at);
      osc.stop(now + 0.26);
    }
  }
}
