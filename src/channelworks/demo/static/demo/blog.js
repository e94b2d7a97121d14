// The live blog: entries are added, changed and removed as the server says.
import { ReconnectingSocket } from "./socket.js";

const entries = document.getElementById("entries");
const canEdit = entries.dataset.canEdit === "true";

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
  article.querySelector(".title").textContent = entry.title;
  article.querySelector(".body").textContent = entry.body;
  article.classList.remove("flash");
  void article.offsetWidth; // restart the highlight animation
  article.classList.add("flash");
}

new ReconnectingSocket("/ws/liveblog/", {
  onMessage(message) {
    if (message.type === "created" || message.type === "updated") {
      render(message.entry);
    } else if (message.type === "deleted") {
      entries.querySelector(`article[data-id="${message.id}"]`)?.remove();
    }
  },
});
