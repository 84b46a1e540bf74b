// The small menu a name in the user list opens, and the dialog that asks for a
// reason before a kick or a ban.
//
// Views only: Chat decides what the menu offers ([{label, run}]) and what a
// reason does; these draw it, move focus as a menu should (arrows, Home/End,
// Escape), and give focus back where it came from. Text goes in as textContent.
// Under the actions, "Details" (from a WHOIS, see whois.js) describe the menu.

import { closeOnPressOutside } from "./popup.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class NameMenu {
  constructor(doc) {
    this.doc = doc;
    this.popup = doc.getElementById("name-popup");
    this.menu = doc.getElementById("name-menu");
    this.details = doc.getElementById("name-details");
    this.detailList = doc.getElementById("name-details-list");
    this.anchor = null;
    this.nick = "";
    this.menu.addEventListener("keydown", (event) => this.onKeyDown(event));
    // A press anywhere else closes it (the name that opened it toggles it).
    closeOnPressOutside(doc, this);
  }

  get isOpen() {
    return !this.popup.hidden;
  }

  get items() {
    return [...this.menu.querySelectorAll('[role="menuitem"]')];
  }

  /** Open under anchor (the name's button) with items [{label, run}]; the first item takes focus. */
  open(anchor, nick, items) {
    if (this.isOpen && this.anchor === anchor) {
      this.close(true);
      return;
    }
    if (this.isOpen) this.close(false);
    this.anchor = anchor;
    this.nick = nick;
    this.menu.setAttribute("aria-label", `Actions for ${nick}`);
    this.menu.replaceChildren(...items.map(({ label, run }) => {
      const button = el("button", "menu-item", label);
      button.type = "button";
      button.setAttribute("role", "menuitem");
      button.tabIndex = -1;
      button.addEventListener("click", () => {
        const anchor = this.anchor;
        this.close(false);
        run(anchor); // a dialog it opens gives focus back to the name (anchor) when it closes
      });
      return button;
    }));
    this.details.setAttribute("aria-label", `Details for ${nick}`);
    this.showDetails(nick, null);
    this.popup.hidden = false;
    anchor.setAttribute("aria-expanded", "true");
    this.place(anchor);
    this.items[0]?.focus();
  }

  /** The details of nick as [{label, value}], or null while they are being looked up. */
  showDetails(nick, lines) {
    if (nick !== this.nick) return;
    this.details.setAttribute("aria-busy", lines === null ? "true" : "false");
    const rows = lines ?? [{ label: "Status", value: "looking up…" }];
    this.detailList.replaceChildren(...rows.flatMap(({ label, value }) => [
      el("dt", "", label), el("dd", "", value),
    ]));
    if (this.isOpen && this.anchor) this.place(this.anchor);
  }

  /** Next to the name, inside the window (fixed position, set through the CSSOM as CSP allows). */
  place(anchor) {
    const box = anchor.getBoundingClientRect();
    const width = this.popup.offsetWidth;
    const height = this.popup.offsetHeight;
    const left = Math.max(4, Math.min(box.left, window.innerWidth - width - 4));
    const below = box.bottom + 2;
    const top = below + height > window.innerHeight - 4 ? Math.max(4, box.top - height - 2) : below;
    this.popup.style.setProperty("left", `${left}px`);
    this.popup.style.setProperty("top", `${top}px`);
  }

  close(returnFocus = true) {
    if (!this.isOpen) return;
    this.popup.hidden = true;
    this.menu.replaceChildren();
    this.detailList.replaceChildren();
    const anchor = this.anchor;
    this.anchor = null;
    if (!anchor) return;
    anchor.setAttribute("aria-expanded", "false");
    if (!returnFocus) return;
    // The list may have been redrawn meanwhile: the same name's new button takes focus.
    const current = anchor.isConnected ? anchor : this.doc.querySelector(`#users [data-nick="${CSS.escape(this.nick)}"] button`);
    current?.focus();
  }

  onKeyDown(event) {
    const items = this.items;
    const index = items.indexOf(this.doc.activeElement);
    const go = (i) => items[(i + items.length) % items.length]?.focus();
    if (event.key === "ArrowDown") go(index + 1);
    else if (event.key === "ArrowUp") go(index - 1);
    else if (event.key === "Home") go(0);
    else if (event.key === "End") go(items.length - 1);
    else if (event.key === "Escape") this.close(true);
    else if (event.key === "Tab") {
      this.close(true);
    } else return;
    event.preventDefault();
    event.stopPropagation();
  }
}

/** "Remove bob from #dev": a reason (optional), then the action or Cancel. */
export class ReasonDialog {
  constructor(doc) {
    this.dialog = doc.getElementById("reason-dialog");
    this.title = doc.getElementById("reason-title");
    this.input = doc.getElementById("reason");
    this.confirm = doc.getElementById("reason-confirm");
    this.onConfirm = null;
    this.returnTo = null;
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.isComposing) return;
      event.preventDefault();
      this.dialog.close("confirm");
    });
    this.message = doc.getElementById("message");
    this.doc = doc;
    this.dialog.addEventListener("close", () => {
      const run = this.onConfirm;
      this.onConfirm = null;
      if (this.dialog.returnValue === "confirm" && run) run(this.input.value.trim());
      this.giveFocusBack();
    });
  }

  /** Focus goes back to the name whose menu asked (its new button if the list was redrawn), else the message box. */
  giveFocusBack() {
    const opener = this.returnTo;
    this.returnTo = null;
    if (opener?.isConnected) {
      opener.focus();
      return;
    }
    const nick = opener?.closest("[data-nick]")?.dataset.nick;
    const again = nick ? this.doc.querySelector(`#users [data-nick="${CSS.escape(nick)}"] button`) : null;
    (again ?? this.message).focus();
  }

  /** Ask; returnTo: the element that opened it (focus goes back there), if any. */
  ask(title, action, onConfirm, returnTo = null) {
    this.returnTo = returnTo;
    this.title.textContent = title;
    this.confirm.textContent = action;
    this.input.value = "";
    this.onConfirm = onConfirm;
    this.dialog.returnValue = "";
    this.dialog.showModal();
    this.input.focus();
  }
}
