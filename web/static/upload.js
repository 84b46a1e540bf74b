// Files on the page: paste an image, drop a file on the conversation, or pick one with the
// paperclip. It goes to the bridge's POST /upload, and the line sent is the file's URL, so
// irssi and WeeChat users see a plain link; the page shows our own image URLs as thumbnails.
//
// Who may upload: the bridge hands every registered connection a ticket in a
// `NOTE * LOBBY_UPLOAD <ticket> <max-bytes>` line, and the upload carries it as
// `Authorization: Bearer <ticket>`. No ticket (uploads off, or not connected): no paperclip.
// Everything reaches the DOM through DOM APIs; no HTML strings.

export const TICKET_CODE = "LOBBY_UPLOAD";
// Our own stored images: /files/ then 22 random characters and the extension the server gave
// after checking the bytes. Only these become thumbnails.
const IMAGE_PATH = /^\/files\/[A-Za-z0-9_-]{22}\.(?:png|jpg|gif|webp)$/;
const MAX_FILES_AT_ONCE = 10;

/** The image URL a line consists of, if it is exactly one of this site's stored images; else null. */
export function ownImageUrl(text, origin = globalThis.location?.origin) {
  const trimmed = (text ?? "").trim();
  if (!trimmed || /\s/.test(trimmed)) return null;
  let url;
  try {
    url = new URL(trimmed);
  } catch {
    return null;
  }
  if (url.origin !== origin || url.search || url.hash || !IMAGE_PATH.test(url.pathname)) return null;
  return url;
}

/** A thumbnail linking to the file, for a line that is one of our image URLs; null for any other line. */
export function filePreview(text) {
  const url = ownImageUrl(text);
  if (!url) return null;
  const link = document.createElement("a");
  link.className = "file-preview";
  link.href = url.href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  const img = document.createElement("img");
  img.src = url.href;
  img.alt = "Shared image (opens the full file)";
  img.loading = "lazy";
  img.decoding = "async";
  // A file that is gone (deleted, or the quota trimmed) leaves the plain link only.
  img.addEventListener("error", () => link.remove());
  link.append(img);
  return link;
}

/** RFC 6266/5987: the file's name in a header, in UTF-8, whatever its script. */
export function dispositionFor(name) {
  const encoded = encodeURIComponent(name || "file").replace(/['()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename*=UTF-8''${encoded}`;
}

function megabytes(bytes) {
  return `${Math.max(1, Math.round(bytes / (1024 * 1024)))} MB`;
}

export class Uploader {
  /**
   * target(): the room or person the file is for (null: none open);
   * send(target, url): say the file's URL there.
   */
  constructor(document, { target, send }) {
    this.document = document;
    this.target = target;
    this.send = send;
    this.ticket = null;
    this.maxBytes = 0;
    this.busy = false;
    this.queue = [];
    this.button = document.getElementById("attach");
    this.picker = document.getElementById("attach-input");
    this.status = document.getElementById("upload-status");
    this.dropZone = document.querySelector(".conversation");
    this.input = document.getElementById("message");
    this.button.addEventListener("click", () => this.picker.click());
    this.picker.addEventListener("change", () => {
      this.add([...this.picker.files]);
      this.picker.value = ""; // the same file may be picked again
    });
    this.input.addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files ?? [])];
      if (files.length === 0 || !this.ticket) return; // text pastes as usual
      event.preventDefault();
      this.add(files);
    });
    // A file dropped anywhere else must not make the browser leave the chat to open it.
    document.addEventListener("dragover", (event) => {
      if (!event.dataTransfer?.types.includes("Files") || this.dropZone.contains(event.target)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "none";
    });
    document.addEventListener("drop", (event) => {
      if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
    });
    this.dropZone.addEventListener("dragover", (event) => {
      if (!this.ticket || !event.dataTransfer?.types.includes("Files")) return;
      event.preventDefault(); // allows the drop
      event.dataTransfer.dropEffect = "copy";
      this.dropZone.classList.add("drop-target");
    });
    this.dropZone.addEventListener("dragleave", (event) => {
      if (!this.dropZone.contains(event.relatedTarget)) this.dropZone.classList.remove("drop-target");
    });
    this.dropZone.addEventListener("drop", (event) => {
      this.dropZone.classList.remove("drop-target");
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length === 0) return;
      event.preventDefault(); // never navigate away to the dropped file
      if (!this.ticket) {
        this.show("error", "Files can't be sent right now (not connected, or this server takes none).");
        return;
      }
      this.add(files);
    });
  }

  /** Follow a Connection: its ticket comes after registering and ends with the socket. */
  watch(conn) {
    conn.addEventListener("message", (event) => {
      const { command, params } = event.detail.msg;
      if (command === "NOTE" && params[0] === "*" && params[1] === TICKET_CODE && params[2]) {
        this.ticket = params[2];
        this.maxBytes = Number(params[3]) || 0;
        this.button.hidden = false;
      }
    });
    conn.addEventListener("state", (event) => {
      if (event.detail.state === "online") return;
      this.ticket = null;
      this.button.hidden = true;
    });
  }

  add(files) {
    const target = this.target();
    if (!target) {
      this.show("error", "Open a room or a conversation first, then add the file.");
      return;
    }
    for (const file of files.slice(0, MAX_FILES_AT_ONCE)) this.queue.push({ file, target });
    if (files.length > MAX_FILES_AT_ONCE) this.show("error", `At most ${MAX_FILES_AT_ONCE} files at once.`);
    this.next();
  }

  next() {
    if (this.busy) return;
    const item = this.queue.shift();
    if (!item) return;
    this.busy = true;
    this.upload(item).finally(() => {
      this.busy = false;
      this.next();
    });
  }

  async upload({ file, target }) {
    const name = file.name || "file";
    if (this.maxBytes && file.size > this.maxBytes) {
      this.show("error", `“${name}” is too large to send: at most ${megabytes(this.maxBytes)}.`);
      return;
    }
    if (file.size === 0) {
      this.show("error", `“${name}” is empty.`);
      return;
    }
    if (!this.ticket) {
      this.show("error", `“${name}” wasn't sent: not connected.`);
      return;
    }
    const progress = this.show("progress", `Sending “${name}”…`);
    try {
      const url = await this.post(file, name, (done) => {
        progress.value = done;
      });
      this.send(target, url);
      this.show("done", `Sent “${name}”.`);
    } catch (err) {
      this.show("error", `“${name}” wasn't sent: ${err.message}`);
    }
  }

  post(file, name, onProgress) {
    return new Promise((resolve, reject) => {
      // XMLHttpRequest, not fetch: only it reports how much of the body has gone.
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/upload");
      xhr.setRequestHeader("Authorization", `Bearer ${this.ticket}`);
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.setRequestHeader("Content-Disposition", dispositionFor(name));
      xhr.responseType = "json";
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        const body = xhr.response ?? {};
        if (xhr.status === 201 && typeof body.url === "string") resolve(body.url);
        else reject(new Error(body.error || `the server answered ${xhr.status}.`));
      });
      xhr.addEventListener("error", () => reject(new Error("the connection failed.")));
      xhr.addEventListener("abort", () => reject(new Error("cancelled.")));
      xhr.send(file);
    });
  }

  /** Say how an upload goes: kind is progress (returns its <progress>), done or error. */
  show(kind, text) {
    const status = this.status;
    status.hidden = false;
    status.dataset.kind = kind;
    const message = this.document.createElement("span");
    message.textContent = text;
    status.replaceChildren(message);
    if (kind !== "progress") return null;
    const bar = this.document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", text);
    status.append(bar);
    return bar;
  }
}
