// Every page of a logged-in user: the unread badge, the toasts, and a "demo:notification"
// event on window for pages that want more. The user's own topic `notifications:<id>` on the
// site's topics socket (social/topics.py) brings them.
//
// The page was made before its socket joined: what came in between would be lost. So after
// each join (rejoins included) the page asks for the notifications after the newest one it
// knows of (the one it was made with, then each one it got) and shows them; one that
// arrives both ways is shown once. One read meanwhile on another page (`read: true`) gets no
// toast, but still reaches the page's listeners (a conversation page shows its message).
import { topics } from "./live.js";

const badge = document.getElementById("unread-badge");
const toasts = document.getElementById("toasts");
let since = Number(toasts.dataset.since) || 0;
const seen = new Set();

function setUnread(count) {
  badge.textContent = String(count);
  badge.hidden = count === 0;
}

const mine = topics.topic(`notifications:${toasts.dataset.userId}`);

// Mark notifications read (the badge of every tab goes down).
export function markRead(ids) {
  mine.push("mark_read", { ids }).catch(() => {});
}

function toast(notification) {
  const item = document.createElement("a");
  item.className = "toast";
  item.href = notification.url || "#";
  item.textContent = notification.text; // text, never HTML
  item.addEventListener("click", () => markRead([notification.id]));
  toasts.append(item);
  setTimeout(() => item.remove(), 8000);
}

function show(notification, unread) {
  if (seen.has(notification.id)) return;
  seen.add(notification.id);
  since = Math.max(since, notification.id);
  setUnread(unread);
  if (!notification.read) toast(notification);
  window.dispatchEvent(new CustomEvent("demo:notification", { detail: notification }));
}

mine.on("notification", (notification) => show(notification, notification.unread));
mine.on("unread", ({ count }) => setUnread(count));
mine.onJoin(async () => {
  try {
    const { unread, missed } = await mine.push("catch_up", { since });
    setUnread(unread);
    for (const notification of missed) show(notification, unread);
  } catch {} // the next rejoin asks again
});
mine.join().catch(() => {});
