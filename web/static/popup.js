// What the page's pop-up menus (a name's menu, the emoji picker) share.

/**
 * A press anywhere outside menu closes it; a press on the button that opened it (menu.anchor)
 * is left to that button, which toggles the menu. menu has isOpen, popup, anchor and close(focusBack).
 */
export function closeOnPressOutside(doc, menu) {
  doc.addEventListener("pointerdown", (event) => {
    if (!menu.isOpen || menu.popup.contains(event.target)) return;
    if (menu.anchor && menu.anchor.contains(event.target)) return;
    menu.close(false);
  });
}
