// Keys that work anywhere on the chat page (listed in /help and the README):
// Alt+↑ and Alt+↓ go to the previous and next room or conversation, in the order
// of the side list. Caught before the message box sees them (there ↑ and ↓ walk
// back through what was sent), and left alone while a dialog or menu is open.

// Ctrl+K (⌘K on a Mac), or "/" outside a text box, opens the search panel.

/** Whether focus is somewhere text is typed (there "/" is a character, not a shortcut). */
function typingInto(element) {
  return Boolean(element?.closest?.("input, textarea, select, [contenteditable=true]"));
}

/**
 * Listen on doc; step(offset) moves to another conversation and says whether it did;
 * search() opens the search panel and says whether it did.
 */
export function installShortcuts(doc, { step, search = () => false }) {
  doc.addEventListener("keydown", (event) => {
    if (event.isComposing || event.altKey || doc.querySelector("dialog[open]")) return;
    const ctrlK = (event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "k";
    const slash = event.key === "/" && !event.ctrlKey && !event.metaKey && !typingInto(event.target);
    if (!(ctrlK || slash) || !search()) return;
    event.preventDefault();
    event.stopPropagation();
  }, true);
  doc.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || event.isComposing) return;
    if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
    if (doc.querySelector("dialog[open]") || !doc.getElementById("name-popup").hidden) return;
    if (!step(event.key === "ArrowUp" ? -1 : 1)) return;
    event.preventDefault();
    event.stopPropagation();
  }, true);
}
