// Unread counts of the rooms a page lists (elements with data-room="<slug>" holding a
// .unread badge): each listed room's "activity" topic tells of its new messages, and those
// of others raise the room's count. The page was made with the counts from the database.
import { topics } from "./live.js";

export function watchRooms(me) {
  for (const element of document.querySelectorAll("[data-room]")) {
    const badge = element.querySelector(".unread");
    const activity = topics.topic(`activity:${element.dataset.room}`);
    activity.on("message", ({ author }) => {
      if (author === me) return;
      badge.textContent = String(Number(badge.textContent) + 1);
      badge.hidden = false;
    });
    activity.join().catch(() => {});
  }
}
