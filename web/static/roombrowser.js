// The "Browse rooms" dialog: the rooms a LIST returned, a filter box, and a
// button per room that joins it.
//
// The list itself is plain data that Chat keeps ({name, users, topic} each);
// this module only draws it, filters it as the user types and reports which
// room was chosen. Text reaches the DOM with textContent only.

/** The rooms whose name or topic contains filter (any case), busiest first. */
export function filterRooms(rooms, filter) {
  const needle = filter.trim().toLocaleLowerCase();
  return rooms
    .filter((room) => !needle || `${room.name} ${room.topic}`.toLocaleLowerCase().includes(needle))
    .sort((a, b) => b.users - a.users || a.name.localeCompare(b.name));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class RoomBrowser {
  constructor(doc) {
    this.dialog = doc.getElementById("room-browser");
    this.filter = doc.getElementById("room-filter");
    this.status = doc.getElementById("room-list-status");
    this.list = doc.getElementById("room-list");
    this.rooms = [];
    this.loading = false;
    this.onJoin = () => {};
    this.filter.addEventListener("input", () => this.render());
    // Enter in the filter joins the only (or first) room shown.
    this.filter.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        // A search box would clear itself first; in this dialog Escape closes at once.
        event.preventDefault();
        this.dialog.close();
        return;
      }
      if (event.key !== "Enter") return;
      event.preventDefault();
      const first = filterRooms(this.rooms, this.filter.value)[0];
      if (first) this.choose(first.name);
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open the dialog (filter: its first words), waiting for the server's list. */
  open(filter = "") {
    this.filter.value = filter;
    this.rooms = [];
    this.loading = true;
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    this.filter.focus();
  }

  /** The server's list (all of it, or what came so far). */
  show(rooms, done) {
    this.rooms = rooms;
    this.loading = !done;
    this.render();
  }

  choose(name) {
    this.dialog.close();
    this.onJoin(name);
  }

  render() {
    const shown = filterRooms(this.rooms, this.filter.value);
    const items = shown.map((room) => {
      const li = el("li");
      const button = el("button", "room-entry");
      button.type = "button";
      const head = el("span", "room-entry-head");
      head.append(el("span", "room-entry-name", room.name),
        el("span", "room-entry-count", room.users === 1 ? "1 person" : `${room.users} people`));
      button.append(head, el("span", room.topic ? "room-entry-topic" : "room-entry-topic empty", room.topic || "No topic"));
      button.addEventListener("click", () => this.choose(room.name));
      li.append(button);
      return li;
    });
    this.list.replaceChildren(...items);
    let text;
    if (this.loading && shown.length === 0) text = "Loading the list of rooms…";
    else if (this.rooms.length === 0) text = "No rooms yet: /join #name makes one.";
    else if (shown.length === 0) text = `No room matches “${this.filter.value.trim()}”.`;
    else text = shown.length === 1 ? "1 room" : `${shown.length} rooms`;
    this.status.textContent = text;
  }
}
