// The people list: a green dot beside everyone who has a page of the site open.
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
