// The notification socket every page of a logged-in user opens: the unread badge, the
// toasts, and a "demo:notification" event on window for pages that want more.
import { ReconnectingSocket } from "./socket.js";

const badge = document.getElementById("unread-badge");
const toasts = document.getElementById("toasts");
// The newest notification this page knows of: the one it was made with, then each one it
// gets. The socket asks for those after it, so none is lost while the page loads or while
// the socket reconnects.
let since = Number(toasts.dataset.since) || 0;

function setUnread(count) {
  badge.textContent = String(count);
  badge.hidden = count === 0;
}

function toast(notification) {
  const item = document.createElement("a");
  item.className = "toast";
  item.href = notification.url || "#";
  item.textContent = notification.text; // text, never HTML
  item.addEventListener("click", () => socket.send({ type: "mark_read", ids: [notification.id] }));
  toasts.append(item);
  setTimeout(() => item.remove(), 8000);
}

export const socket = new ReconnectingSocket(() => `/ws/notifications/?since=${since}`, {
  onMessage(message) {
    if (message.type === "unread") {
      setUnread(message.count);
    } else if (message.type === "notification") {
      since = Math.max(since, message.id);
      setUnread(message.unread);
      toast(message);
      window.dispatchEvent(new CustomEvent("demo:notification", { detail: message }));
    }
  },
});
