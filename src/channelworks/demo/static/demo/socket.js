// A WebSocket that reconnects by itself, and the page's connection indicator.
//
// After a close the socket waits, then connects again. The wait is "full jitter": drawn at
// random between 0 and a ceiling that doubles with each failed attempt (0.5 s, 1 s, 2 s, 4 s)
// and stops at 5 s, so a page is back within seconds of its server and the pages of a
// restarted server do not all come back in the same instant. The sockets of a page share one
// wait (they talk to one server): one countdown, and all that wait try again together. They
// try again at once when the tab becomes visible, when the browser says it is online again,
// or when the user presses "retry now". Close codes 4401 (login required), 4403 (forbidden)
// and 4404 (not found) are the server's final answer: no retry. Every socket of the page
// reports to #connection, which shows the worst, with a countdown to the next attempt.

const FINAL_CLOSES = { 4401: "log in required", 4403: "not allowed", 4404: "not found" };
export const BACKOFF_BASE = 500;
export const BACKOFF_CAP = 5000;
const sockets = new Set();
// The page's one wait: failed attempts so far, the timer and when it fires.
const retry = { attempt: 0, timer: null, at: 0 };
let ticker = null;

// The wait before reconnection attempt number `attempt` (0 for the first), in ms.
export function backoff(attempt, base = BACKOFF_BASE, cap = BACKOFF_CAP) {
  return Math.random() * Math.min(cap, base * 2 ** Math.min(attempt, 30));
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
    sockets.add(this);
    this.connect();
  }

  connect() {
    this.setState("connecting");
    const url = new URL(typeof this.path === "function" ? this.path() : this.path, window.location.href);
    url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = (this.ws = new WebSocket(url));
    ws.onopen = () => {
      retry.attempt = 0;
      this.setState("open");
      this.onOpen();
    };
    ws.onmessage = (event) => this.onMessage(this.json ? JSON.parse(event.data) : event.data);
    ws.onclose = (event) => {
      if (event.code in FINAL_CLOSES) {
        this.setState("closed", event.reason || FINAL_CLOSES[event.code]);
        return;
      }
      this.setState("reconnecting");
      if (retry.timer === null) {
        const delay = backoff(retry.attempt++);
        retry.at = Date.now() + delay;
        retry.timer = setTimeout(retryAll, delay);
      }
      showConnection();
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

// Connect every waiting socket of the page now (the countdown is skipped).
export function retryAll() {
  clearTimeout(retry.timer);
  retry.timer = null;
  for (const socket of sockets) if (socket.state === "reconnecting") socket.connect();
  window.dispatchEvent(new Event("demo:retry")); // live.js: the topics socket too
}

function showConnection() {
  const element = document.getElementById("connection");
  const button = document.getElementById("retry-now");
  if (!element) return;
  const all = [...sockets];
  const worst =
    all.find((s) => s.state === "closed") ||
    all.find((s) => s.state === "reconnecting") ||
    all.find((s) => s.state === "connecting");
  element.hidden = all.length === 0;
  element.dataset.state = worst ? worst.state : "open";
  element.dataset.attempt = String(retry.attempt); // failed attempts since the last open
  if (worst?.state === "reconnecting") {
    const seconds = Math.max(0, Math.ceil((retry.at - Date.now()) / 1000));
    element.textContent = `reconnecting in ${seconds} s`;
  } else {
    element.textContent = worst ? worst.detail || `${worst.state}…` : "connected";
  }
  if (button) button.hidden = worst?.state !== "reconnecting";
  // The countdown ticks while some socket waits, and only then.
  const waiting = all.some((s) => s.state === "reconnecting");
  if (waiting && ticker === null) ticker = setInterval(showConnection, 250);
  if (!waiting && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

document.getElementById("retry-now")?.addEventListener("click", retryAll);
window.addEventListener("online", retryAll);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") retryAll();
});
