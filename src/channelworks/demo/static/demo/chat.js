// A chat room on the site's topics socket: the history, then the room's topic `chat:<slug>`
// (chat/topics.py) for new messages, who is here and who is typing; the form pushes a message.
//
// The page opens at its newest message and loads older pages as the user scrolls up (or
// presses "Load older messages"). It joins the room's topic from the position its view read
// before the history, and after a reconnect from the last message it got: the server replays
// what was missed meanwhile, in order, before anything live ("You missed N messages"). When
// it cannot (`recovered: false`: the server lost its log, or too much was missed) the page
// asks the database for the messages after the newest it shows (`?after=`), holding live
// ones until they are in; more than it would show: it reloads. A message it shows already is
// skipped, so none appears twice.
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
let loading = false;
let held = null; // live messages that wait while the page catches up from the database
let catchUps = 0; // catch-ups begun; only the latest lets the held messages go

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
const missedNote = document.getElementById("missed");
function showMissed(count) {
  missedNote.textContent = `You missed ${count} message${count === 1 ? "" : "s"} while reconnecting: they are above, in order.`;
  missedNote.hidden = false;
  clearTimeout(showMissed.timer);
  showMissed.timer = setTimeout(() => (missedNote.hidden = true), 10_000);
}

for (const message of history.messages) append(message);
scrollToEnd();
older.addEventListener("click", loadOlder);
// Infinite scroll: the "older" button coming into view loads the page before.
new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting)) loadOlder();
}, { root: scroller }).observe(older);

const roomTopic = topics.topic(`chat:${slug}`);
// Where the room's log stood when the page was made: the first join replays what came after.
roomTopic.position = JSON.parse(document.getElementById("room-position").textContent);

// What the page shows is read: the room lists count the unread messages after it.
let toldRead = newest;
function tellRead() {
  if (newest <= toldRead || roomTopic.state !== "joined") return;
  toldRead = newest;
  roomTopic.push("read", { id: newest }).catch(() => (toldRead = 0));
}

function received(message) {
  if (held) held.push(message);
  else append(message);
  tellRead();
}

// The log could not give what was missed: the database can (the messages after the newest
// one shown), while live ones wait so that the order holds. A reconnect during a catch-up
// begins another: live ones then wait for that one (whose answer is the newer), and the
// first ends without letting them go.
async function catchUp() {
  room.dataset.resumed = "catching-up";
  const mine = ++catchUps;
  held ??= [];
  let missed = 0;
  try {
    const response = await fetch(`${room.dataset.olderUrl}?after=${newest}`);
    if (!response.ok) throw new Error(`${response.status}`);
    const page = await response.json();
    if (page.more) return window.location.reload(); // too much to show here
    missed = page.messages.filter((message) => !shown.has(message.id)).length;
    for (const message of page.messages) append(message);
  } catch {
    showError("Could not load the messages missed while reconnecting; reload the page.");
  } finally {
    if (mine === catchUps) {
      const live = held;
      held = null;
      for (const message of live) append(message);
    }
  }
  if (mine !== catchUps) return 0; // the latest one tells
  room.dataset.resumed = "database";
  tellRead();
  return missed;
}

roomTopic.on("message", received);
roomTopic.onJoin(async ({ rejoin, recovered, missed, position }) => {
  showError("");
  form.querySelector("button").disabled = false;
  // No position at all: a channel layer without history, which can replay nothing.
  if (recovered === false || !position) {
    const count = await catchUp();
    if (rejoin && count > 0) showMissed(count);
  } else {
    room.dataset.resumed = "log";
    if (rejoin && missed > 0) showMissed(missed);
  }
});
// Who may see the room changed (chat/signals.py): join again, which asks the server.
roomTopic.onClose(({ kind, reason }) => {
  if (kind === "closed" && reason === "recheck") {
    roomTopic.join();
    return;
  }
  form.querySelector("button").disabled = true;
  showError(reason === "not_found" ? "This room is gone, or you may no longer see it." : `Left the room (${reason}).`);
  // Out of the room: who was here and who was typing are not known any more.
  here.replaceChildren();
  for (const user of [...typing.keys()]) stoppedTyping(user);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value;
  input.value = "";
  toldTypingAt = 0; // the next message's typing is told at once
  showError("");
  try {
    await roomTopic.push("message", { text }, { timeout: 5000 });
  } catch (error) {
    if (error.kind === "disconnected") {
      showError("The connection dropped while sending: the message shows above if it was sent.");
      return;
    }
    if (!input.value) input.value = text; // not sent: the text is back to send again
    showError(error.kind === "reply" ? error.response.message || error.reason : "Not sent (not connected); try again in a moment.");
  }
});

// -- who is here, who is typing: the same topic ---------------------------------------------

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

roomTopic.join().catch(() => {}); // a refusal: onClose says it
watchRooms(me); // the other rooms of the sidebar
