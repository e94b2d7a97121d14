// A direct-message conversation: a message from the other person is shown as it arrives,
// and marked read at once (the page shows it: the unread badge must not count it).
import { markRead } from "./notifications.js";
import { messageItem, paint, regroup } from "./messages.js";

const scroller = document.getElementById("scroller");
const list = document.getElementById("messages");
const peer = list.dataset.peer;
const me = list.dataset.me;

for (const item of list.querySelectorAll("li.msg")) {
  paint(item.querySelector(".avatar"), item.dataset.author);
  regroup(item);
}
scroller.scrollTop = scroller.scrollHeight;

window.addEventListener("demo:notification", (event) => {
  const notification = event.detail;
  if (notification.kind !== "message" || notification.data.sender !== peer) return;
  // One read on another page while this one reconnected is still shown here.
  if (!notification.read) markRead([notification.id]);
  // A message sent while the page loaded can be in its HTML and caught up by the socket too.
  if (list.querySelector(`li[data-id="${notification.data.id}"]`)) return;
  const message = {
    id: notification.data.id,
    author: peer,
    avatar: "",
    text: notification.data.text,
    created: notification.created,
  };
  const item = messageItem(message, me);
  list.append(item);
  regroup(item);
  scroller.scrollTop = scroller.scrollHeight;
});
