// A WebSocket that reconnects by itself, and the page's connection indicator.
//
// After a close the socket waits, then connects again: the wait doubles with each failed
// attempt (0.5 s, 1 s, 2 s ... up to 15 s) and is drawn at random from its upper half, so
// that the pages of a restarted server do not all come back in the same instant. Close
// codes 4401 (login required), 4403 (forbidden) and 4404 (not found) are the server's final
// answer: no retry. Every socket of the page reports to #connection, which shows the worst.

const FINAL_CLOSES = { 4401: "log in required", 4403: "not allowed", 4404: "not found" };
const sockets = new Set();

export function backoff(attempt, base = 500, cap = 15000) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export class ReconnectingSocket {
  // path: "/ws/echo/", or a function returning it, called for each (re)connection;
  // onMessage(data): data is parsed JSON unless json is false; onOpen(): after each
  // (re)connection.
  constructor(path, { onMessage = () => {}, onOpen = () => {}, json = true } = {}) {
    this.path = path;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.json = json;
    this.attempt = 0;
    sockets.add(this);
    this.connect();
  }

  connect() {
    this.setState("connecting");
    const url = new URL(typeof this.path === "function" ? this.path() : this.path, window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = (this.ws = new WebSocket(url));
    ws.onopen = () => {
      this.attempt = 0;
      this.setState("open");
      this.onOpen();
    };
    ws.onmessage = (event) => this.onMessage(this.json ? JSON.parse(event.data) : event.data);
    ws.onclose = (event) => {
      if (event.code in FINAL_CLOSES) {
        this.setState("closed", event.reason || FINAL_CLOSES[event.code]);
        return;
      }
      const delay = backoff(this.attempt++);
      this.setState("reconnecting", `reconnecting in ${Math.ceil(delay / 1000)} s`);
      setTimeout(() => this.connect(), delay);
    };
  }

  // Send now, or return false when not connected (nothing is queued).
  send(data) {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(this.json ? JSON.stringify(data) : data);
    return true;
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    showConnection();
  }
}

function showConnection() {
  const element = document.getElementById("connection");
  if (!element) return;
  const all = [...sockets];
  const worst =
    all.find((s) => s.state === "closed") ||
    all.find((s) => s.state === "reconnecting") ||
    all.find((s) => s.state === "connecting");
  element.hidden = all.length === 0;
  element.dataset.state = worst ? worst.state : "open";
  element.textContent = worst ? worst.detail || `${worst.state}…` : "connected";
}
