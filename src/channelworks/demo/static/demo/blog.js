// The live blog: entries are added, changed and removed as the server says. The page keeps
// the position of the last event it got and reconnects with it, so the events it missed are
// sent then; without one (or when the server lost its log) the server sends every entry and
// the page is made to match them.
import { ReconnectingSocket } from "./socket.js";

const entries = document.getElementById("entries");
const canEdit = entries.dataset.canEdit === "true";
let position = null;

function render(entry) {
  let article = entries.querySelector(`article[data-id="${entry.id}"]`);
  if (!article) {
    article = document.createElement("article");
    article.dataset.id = entry.id;
    const title = document.createElement("h2");
    title.className = "title";
    const body = document.createElement("p");
    body.className = "body";
    article.append(title, body);
    if (canEdit) {
      const links = document.createElement("p");
      links.className = "muted";
      const edit = document.createElement("a");
      edit.href = `/blog/${entry.id}/edit/`;
      edit.textContent = "Edit";
      links.append(edit);
      article.append(links);
    }
    entries.prepend(article);
  }
  const title = article.querySelector(".title");
  const body = article.querySelector(".body");
  if (title.textContent === entry.title && body.textContent === entry.body) return;
  title.textContent = entry.title;
  body.textContent = entry.body;
  article.classList.remove("flash");
  void article.offsetWidth; // restart the highlight animation
  article.classList.add("flash");
}

// Make the page show exactly `all` (newest first), as after a reload.
function replaceAll(all) {
  const keep = new Set(all.map((entry) => String(entry.id)));
  for (const article of entries.querySelectorAll("article")) {
    if (!keep.has(article.dataset.id)) article.remove();
  }
  for (const entry of [...all].reverse()) render(entry);
  for (const entry of all) entries.append(entries.querySelector(`article[data-id="${entry.id}"]`));
}

function remember(next) {
  if (!next) return;
  if (!position || position[1] !== next[1] || next[0] > position[0]) position = next;
}

new ReconnectingSocket(
  () => {
    if (!position) return "/ws/liveblog/";
    const params = new URLSearchParams({ offset: String(position[0]), epoch: position[1] });
    return `/ws/liveblog/?${params}`;
  },
  {
    onMessage(message) {
      remember(message.position);
      if (message.type === "created" || message.type === "updated") {
        render(message.entry);
      } else if (message.type === "deleted") {
        entries.querySelector(`article[data-id="${message.id}"]`)?.remove();
      } else if (message.type === "entries") {
        replaceAll(message.entries);
      } else if (message.type === "resumed") {
        entries.dataset.resumed = message.source;
      }
    },
  },
);
