// Unread counts of the rooms a page lists (elements with data-room="<slug>" holding a
// .unread badge): each listed room's "activity" topic tells of its new messages, and those
// of others raise the room's count. After each join (a reconnect included) the page asks
// the count to start from and the newest message it covers: a message sent meanwhile is
// either in it or newer than it, so it is counted once.
import { topics } from "./live.js";

export function watchRooms(me) {
  for (const element of document.querySelectorAll("[data-room]")) {
    const badge = element.querySelector(".unread");
    const show = (count) => {
      badge.textContent = String(count);
      badge.hidden = count === 0;
    };
    const activity = topics.topic(`activity:${element.dataset.room}`);
    let newest = Infinity; // until the count is known, live messages are in it
    activity.on("message", ({ id, author }) => {
      if (author === me || id <= newest) return;
      newest = id;
      show(Number(badge.textContent) + 1);
    });
    activity.onJoin(async () => {
      newest = Infinity;
      try {
        const start = await activity.push("unread", {});
        newest = start.newest;
        show(start.unread);
      } catch {
        newest = 0; // no count: the page's own, and every message from now on
      }
    });
    // Who may see the room changed (chat/signals.py): join again, which asks the server.
    activity.onClose(({ kind, reason }) => {
      if (kind === "closed" && reason === "recheck") activity.join();
    });
    activity.join().catch(() => {});
  }
}
