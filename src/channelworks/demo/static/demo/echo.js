// Echo: what is sent comes back; both are logged.
import { ReconnectingSocket } from "./socket.js";

const log = document.getElementById("echo-log");
const form = document.getElementById("echo-form");
const input = document.getElementById("echo-input");

function line(direction, text) {
  const item = document.createElement("li");
  item.className = direction;
  item.textContent = `${direction === "sent" ? "→" : "←"} ${text}`;
  log.append(item);
}

const socket = new ReconnectingSocket("/ws/echo/", {
  json: false,
  onMessage: (text) => line("received", text),
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket.send(input.value)) {
    line("sent", input.value);
    input.value = "";
  }
});
