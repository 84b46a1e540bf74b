// Deleting a message (IRCv3 draft/message-redaction): the Delete action of a line, its
// confirmation, and the REDACT it sends. The server decides (its own messages for anyone, any
// message of a room for its operators); the page only offers what the server would accept.
//
// Which lines show Delete is not drawn into each line (a line's drawing is kept while the
// room's ranks change): render.js gives every message a Delete button, and the log's
// data-delete ("any", "own" or "none", kept current by the chat) lets style.css show it on all
// lines, on our own (.line.self), or on none.

export const REDACTION_CAP = "draft/message-redaction";

/** On which lines of buffer the Delete action is offered: "any", "own" or "none". */
export function deletable(chat, buffer) {
  if (!buffer || buffer.removed || !chat.conn.caps.has(REDACTION_CAP)) return "none";
  if (buffer.kind === "room") return chat.isOperator(buffer) ? "any" : "own";
  // A private conversation is kept, and its messages can be taken back, only between two accounts.
  return chat.account ? "own" : "none";
}

/** Whether line of buffer may be deleted by us now. */
export function mayDelete(chat, buffer, line) {
  const scope = deletable(chat, buffer);
  return Boolean(line?.msgid) && line.redacted == null && (scope === "any" || (scope === "own" && line.self));
}

/**
 * Ask before deleting line of buffer (an optional reason, which everyone who sees the message
 * sees); on confirming, REDACT it. The line says "message deleted" when the server's REDACT
 * comes back; a refusal (FAIL REDACT) is shown as an error. Focus returns to the line.
 */
export function askDelete(chat, buffer, line, opener) {
  if (!mayDelete(chat, buffer, line)) return;
  const whose = line.self ? "your message" : `${line.nick}’s message`;
  chat.view.reasonDialog.ask(`Delete ${whose}?`, "Delete", (reason) => {
    if (reason) chat.conn.send("REDACT", buffer.name, line.msgid, reason);
    else chat.conn.send("REDACT", buffer.name, line.msgid);
  }, opener);
}
