// The room settings panel that operators open from the room header: topic lock,
// moderated, invite-only, delayed join and auditorium (for huge rooms), key, member
// limit, and the ban list with Unban buttons.
//
// A view: it draws a room's state (Chat's plain data: modes.flags/key/limit and
// lists.b) and reports what the operator changed as MODE parameters through
// onMode(room, ...params). The server's answer (a MODE line) comes back through
// Chat, which draws the panel again; nothing here assumes a change went through.

import { maskName } from "./modes.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const FLAGS = ["t", "m", "i", "D", "u"];

export class RoomSettings {
  constructor(doc) {
    const $ = (id) => doc.getElementById(id);
    this.dialog = $("room-settings");
    this.title = $("room-settings-title");
    this.flags = Object.fromEntries(FLAGS.map((mode) => [mode, $(`mode-${mode}`)]));
    this.keyForm = $("key-form");
    this.keyInput = $("mode-key");
    this.keyState = $("key-state");
    this.keyRemove = $("key-remove");
    this.limitForm = $("limit-form");
    this.limitInput = $("mode-limit");
    this.limitState = $("limit-state");
    this.limitRemove = $("limit-remove");
    this.banStatus = $("ban-status");
    this.banList = $("ban-list");
    this.room = null;
    this.onMode = () => {};
    this.onClose = () => {};
    for (const mode of FLAGS) {
      this.flags[mode].addEventListener("change", (event) => {
        this.send(`${event.target.checked ? "+" : "-"}${mode}`);
      });
    }
    this.keyForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = this.keyInput.value.trim();
      if (key && !/\s/.test(key)) this.send("+k", key);
    });
    this.keyRemove.addEventListener("click", () => this.send("-k", "*"));
    this.limitForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const limit = Number.parseInt(this.limitInput.value, 10);
      if (limit > 0) this.send("+l", String(limit));
    });
    this.limitRemove.addEventListener("click", () => this.send("-l"));
    this.dialog.addEventListener("close", () => {
      this.room = null;
      this.onClose();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  send(...params) {
    if (this.room) this.onMode(this.room, ...params);
  }

  /** Open for a room (its current state; the bans follow when the server sends them). */
  open(buffer) {
    this.keyInput.value = "";
    this.limitInput.value = "";
    this.show(buffer);
    if (!this.dialog.open) this.dialog.showModal();
    this.flags.t.focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  /** Draw the room's state: flags, key, limit, bans. */
  show(buffer) {
    this.room = buffer.name;
    this.title.textContent = `Settings of ${buffer.name}`;
    const { flags, key, limit } = buffer.modes;
    for (const mode of FLAGS) this.flags[mode].checked = flags.has(mode);
    this.keyState.textContent = key === null ? "No key: anyone may join." : "A key is set: people need it to join.";
    this.keyRemove.disabled = key === null;
    this.limitState.textContent = limit === null ? "No limit." : `At most ${limit} people.`;
    this.limitRemove.disabled = limit === null;
    const bans = buffer.lists.b;
    this.banStatus.textContent = bans === null ? "Loading the ban list…"
      : bans.length === 0 ? "Nobody is banned." : bans.length === 1 ? "1 ban" : `${bans.length} bans`;
    this.banList.replaceChildren(...(bans ?? []).map(({ mask, by }) => {
      const li = el("li", "ban");
      li.append(el("span", "ban-mask", mask));
      if (by) li.append(el("span", "ban-by", ` by ${by.split("!")[0]}`));
      const unban = el("button", "ban-remove", "Unban");
      unban.type = "button";
      unban.setAttribute("aria-label", `Unban ${maskName(mask)}`);
      unban.addEventListener("click", () => this.send("-b", mask));
      li.append(unban);
      return li;
    }));
  }
}
