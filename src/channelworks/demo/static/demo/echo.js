// Echo: what is sent comes back; both are logged. The smallest consumer (echo/consumers.py)
// on a plain WebSocket of its own, which connects again a second after it closes.

const log = document.getElementById("echo-log");
const form = document.getElementById("echo-form");
const input = document.getElementById("echo-input");
let socket = null;

function line(direction, text) {
  const item = document.createElement("li");
  item.className = direction;
  item.textContent = `${direction === "sent" ? "→" : "←"} ${text}`;
  log.append(item);
}

function connect() {
  const url = new URL("/ws/echo/", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(url);
  socket.onopen = () => (form.dataset.state = "open");
  socket.onmessage = (event) => line("received", event.data);
  socket.onclose = () => {
    form.dataset.state = "closed";
    setTimeout(connect, 1000);
  };
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket.readyState !== WebSocket.OPEN) return;
  socket.send(input.value);
  line("sent", input.value);
  input.value = "";
});

connect();
