// A chat room: messages from the room's socket are appended; the form sends one.
import { ReconnectingSocket } from "./socket.js";

const slug = document.getElementById("room").dataset.slug;
const list = document.getElementById("messages");
const form = document.getElementById("message-form");
const input = document.getElementById("message-input");
const error = document.getElementById("chat-error");

function showError(text) {
  error.textContent = text;
  error.hidden = !text;
}

function append(message) {
  const item = document.createElement("li");
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = message.text; // text, never HTML: "<b>" shows as typed
  const time = document.createElement("time");
  time.dateTime = message.created;
  time.textContent = new Date(message.created).toISOString().slice(11, 16);
  item.append(author, " ", text, " ", time);
  list.append(item);
  item.scrollIntoView({ block: "nearest" });
}

const socket = new ReconnectingSocket(`/ws/chat/${slug}/`, {
  onMessage(message) {
    if (message.type === "message") append(message);
    else if (message.type === "error") showError(message.message);
  },
  onOpen: () => showError(""),
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket.send({ type: "message", text: input.value })) {
    input.value = "";
    showError("");
  } else {
    showError("Not connected; try again in a moment.");
  }
});
