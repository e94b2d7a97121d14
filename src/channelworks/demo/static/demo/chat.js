// A chat room: the history, then messages from the room's socket; the form sends one.
//
// The page opens at its newest message and loads older pages as the user scrolls up (or
// presses "Load older messages"). It keeps the position of the last message it got and the id
// of the newest one it shows, and reconnects with both: the server then sends what was
// missed meanwhile, from the room's log or from the database (chat/consumers.py); a message
// it shows already is skipped, so none appears twice.
import { ReconnectingSocket } from "./socket.js";
import { avatar, messageItem, regroup } from "./messages.js";
import { topics } from "./live.js";
import { watchRooms } from "./unread.js";

const room = document.getElementById("room");
const slug = room.dataset.slug;
const me = room.dataset.me;
const scroller = document.getElementById("scroller");
const list = document.getElementById("messages");
const older = document.getElementById("load-older");
const form = document.getElementById("message-form");
const input = document.getElementById("message-input");
const error = document.getElementById("chat-error");
const history = JSON.parse(document.getElementById("history").textContent);

const TYPING_SHOWN_MS = 4000; // "bob is typing…" lasts this long after bob's last keystroke
const TYPING_EVERY_MS = 2000; // a typing user tells the room at most this often
const here = document.getElementById("here");
const typingLine = document.getElementById("typing");
const typing = new Map(); // user -> timer that clears them
let toldTypingAt = 0;

const shown = new Set();
let newest = 0; // the id of the newest message shown
let position = null; // [offset, epoch] of the last message from the room's log
let loading = false;

function showError(text) {
  error.textContent = text;
  error.hidden = !text;
}

function nearBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
}

function scrollToEnd() {
  scroller.scrollTop = scroller.scrollHeight;
}

function append(message) {
  stoppedTyping(message.author);
  if (shown.has(message.id)) return;
  const follow = nearBottom() || message.author === me;
  shown.add(message.id);
  newest = Math.max(newest, message.id);
  const item = messageItem(message, me);
  list.append(item);
  regroup(item);
  if (follow) scrollToEnd();
}

function prepend(messages) {
  const fresh = messages.filter((message) => !shown.has(message.id));
  const items = fresh.map((message) => messageItem(message, me));
  const height = scroller.scrollHeight;
  for (const message of fresh) shown.add(message.id);
  list.prepend(...items);
  for (const item of [...items, items.length ? items.at(-1).nextElementSibling : null]) regroup(item);
  scroller.scrollTop += scroller.scrollHeight - height; // the user stays where they were
}

async function loadOlder() {
  const first = list.querySelector("li.msg");
  if (loading || older.hidden || !first) return;
  loading = true;
  older.textContent = "Loading…";
  try {
    const response = await fetch(`${room.dataset.olderUrl}?before=${first.dataset.id}`);
    if (!response.ok) throw new Error(`${response.status}`);
    const page = await response.json();
    prepend(page.messages);
    older.hidden = !page.more;
  } catch {
    showError("Could not load older messages; try again.");
  } finally {
    older.textContent = "Load older messages";
    loading = false;
  }
}

// After a reconnect: "You missed 6 messages", until the user reads on.
let reconnected = false;
const missedNote = document.getElementById("missed");
function showMissed(count) {
  missedNote.textContent = `You missed ${count} message${count === 1 ? "" : "s"} while reconnecting: they are above, in order.`;
  missedNote.hidden = false;
  clearTimeout(showMissed.timer);
  showMissed.timer = setTimeout(() => (missedNote.hidden = true), 10_000);
}

function remember(next) {
  if (!next) return;
  if (!position || position[1] !== next[1] || next[0] > position[0]) position = next;
}

for (const message of history.messages) append(message);
scrollToEnd();
older.addEventListener("click", loadOlder);
// Infinite scroll: the "older" button coming into view loads the page before.
new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting)) loadOlder();
}, { root: scroller }).observe(older);

const socket = new ReconnectingSocket(
  () => {
    const params = new URLSearchParams({ after: String(newest) });
    if (position) {
      params.set("offset", String(position[0]));
      params.set("epoch", position[1]);
    }
    return `/ws/chat/${slug}/?${params}`;
  },
  {
    onMessage(message) {
      if (message.type === "message") {
        remember(message.position);
        append(message);
      } else if (message.type === "resumed") {
        remember(message.position);
        room.dataset.resumed = message.source;
        if (message.source === "reload") window.location.reload();
        else if (reconnected && message.missed > 0) showMissed(message.missed);
        reconnected = true;
      } else if (message.type === "error") {
        showError(message.message);
      }
    },
    onOpen: () => showError(""),
  },
);

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket.send({ type: "message", text: input.value })) {
    input.value = "";
    toldTypingAt = 0; // the next message's typing is told at once
    showError("");
  } else {
    showError("Not connected; try again in a moment.");
  }
});

// -- who is here, who is typing: the room's topic on the site's topics socket ---------------


const roomTopic = topics.topic(`chat:${slug}`);
const presence = new Channelworks.Presence(roomTopic);

presence.onSync(() => {
  const people = presence.list((user, { metas }) => ({ user, metas }));
  here.replaceChildren(
    ...people.map(({ user, metas }) => {
      const item = document.createElement("li");
      item.dataset.user = user;
      const name = document.createElement("span");
      name.textContent = user === me ? `${user} (you)` : user;
      item.append(avatar(user, metas[0]?.avatar), name);
      if (metas.length > 1) {
        const tabs = document.createElement("span");
        tabs.className = "tabs muted small";
        tabs.textContent = `${metas.length} tabs`;
        item.append(tabs);
      }
      return item;
    }),
  );
});

function showTyping() {
  const names = [...typing.keys()];
  typingLine.textContent =
    names.length === 0 ? "" : `${names.join(", ")} ${names.length === 1 ? "is" : "are"} typing…`;
}

function stoppedTyping(user) {
  clearTimeout(typing.get(user));
  if (typing.delete(user)) showTyping();
}

roomTopic.on("typing", ({ user }) => {
  if (user === me) return;
  clearTimeout(typing.get(user));
  typing.set(user, setTimeout(() => stoppedTyping(user), TYPING_SHOWN_MS));
  showTyping();
});

input.addEventListener("input", () => {
  if (!input.value || Date.now() - toldTypingAt < TYPING_EVERY_MS) return;
  toldTypingAt = Date.now();
  roomTopic.push("typing", {}).catch(() => {}); // best effort: it is stale in seconds anyway
});

roomTopic.join().catch(() => {});
watchRooms(me); // the other rooms of the sidebar
