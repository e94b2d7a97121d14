// The people list: a green dot beside everyone who has a page of the site open, and the
// unread messages of each conversation, counting up as messages arrive.
import { onlineNow } from "./live.js";

function show() {
  const here = new Set(onlineNow.list((key) => key));
  for (const item of document.querySelectorAll("#people li[data-user]")) {
    const online = here.has(item.dataset.user);
    item.classList.toggle("online", online);
    item.querySelector(".presence").textContent = online ? "online" : "";
  }
}

onlineNow.onSync(show);
show();

window.addEventListener("demo:notification", (event) => {
  const { kind, data, read } = event.detail;
  if (kind !== "message" || read) return; // read: on another page, while this one reconnected
  const badge = document.querySelector(`#people li[data-user="${CSS.escape(data.sender)}"] .unread`);
  if (!badge) return;
  badge.textContent = String(Number(badge.textContent) + 1);
  badge.hidden = false;
});
