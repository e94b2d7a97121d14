// The live blog: entries are added, changed and removed as the topic `liveblog` says
// (blog/topics.py). The page joins from the position its view read before the entries, and
// after a reconnect from the last event it got, so the events it missed arrive then; when the
// server cannot replay them (`recovered: false`: it lost its log), the page asks for every
// entry and is made to match them.
import { topics } from "./live.js";

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

const blog = topics.topic("liveblog");
// Where the topic's log stood when the page was made: the first join replays what came after.
blog.position = JSON.parse(document.getElementById("blog-position").textContent);
blog.on("created", ({ entry }) => render(entry));
blog.on("updated", ({ entry }) => render(entry));
blog.on("deleted", ({ id }) => entries.querySelector(`article[data-id="${id}"]`)?.remove());
blog.onJoin(async ({ recovered, position }) => {
  // No position at all: a channel layer without history, which can replay nothing.
  if (recovered !== false && position) {
    entries.dataset.resumed = "log";
    return;
  }
  entries.dataset.resumed = "catching-up";
  try {
    replaceAll((await blog.push("entries", {})).entries);
    entries.dataset.resumed = "database";
  } catch {
    entries.dataset.resumed = "failed"; // the next rejoin tries again
  }
});
blog.join().catch(() => {});
