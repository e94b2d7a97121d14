// The site's topics socket, the one every page opens (channelworks' browser client,
// `Channelworks`, from channelworks/client.js), and the header's connection indicator.
//
// Every live part of a page is a topic on it: a chat room and its activity (chat.js,
// unread.js), the user's notifications (notifications.js), who is online, a post, the live
// blog. The client reconnects by itself and rejoins every topic, each from the position of
// the last message it got, so what was sent meanwhile arrives then (or the topic says
// `recovered: false` and the page reads it from the database).
//
// The wait before a reconnect is "full jitter": random between 0 and a ceiling that doubles
// from 0.5 s and stops at 5 s, so a page is back within seconds of its server however long
// the outage was, and many pages do not come back in the same instant. It is cut short when
// the tab becomes visible, when the browser comes back online, or on "Retry now".

export const topics = new Channelworks.Socket("/ws/topics/", { backoffBase: 500, backoffMax: 5000 });

// Logged-in users are in "online", so the people list can show who has a page open.
const online = topics.topic("online");
// Who has a page of the site open: one key per user, one meta per tab.
export const onlineNow = new Channelworks.Presence(online);

// -- the header's indicator: connected / connecting / reconnecting in N s / why it stopped --
const STATES = { open: "open", connecting: "connecting", waiting: "reconnecting", stopped: "closed", closed: "connecting" };
const STOPPED = { 1000: "closed", 4401: "log in required", 4403: "not allowed" };
const retry = { attempt: 0, at: 0, reason: "" }; // failed attempts since the last open
let ticker = null;

function showConnection() {
  const element = document.getElementById("connection");
  const button = document.getElementById("retry-now");
  if (!element) return;
  const state = STATES[topics.state];
  element.hidden = false;
  element.dataset.state = state;
  element.dataset.attempt = String(retry.attempt);
  if (state === "reconnecting") {
    const seconds = Math.max(0, Math.ceil((retry.at - Date.now()) / 1000));
    element.textContent = `reconnecting in ${seconds} s`;
  } else if (state === "closed") {
    element.textContent = retry.reason;
  } else {
    element.textContent = state === "open" ? "connected" : "connecting…";
  }
  if (button) button.hidden = state !== "reconnecting";
  // The countdown ticks while the socket waits, and only then.
  if (state === "reconnecting" && ticker === null) ticker = setInterval(showConnection, 250);
  if (state !== "reconnecting" && ticker !== null) {
    clearInterval(ticker);
    ticker = null;
  }
}

topics.on("open", () => {
  retry.attempt = 0;
  showConnection();
});
topics.on("close", ({ code, reason, reconnectIn }) => {
  if (reconnectIn === null) {
    retry.reason = reason || STOPPED[code] || `closed (${code})`;
  } else {
    retry.attempt += 1;
    retry.at = Date.now() + reconnectIn;
  }
  showConnection();
});
topics.on("state", showConnection);
// "Retry now": connect() cuts a pending wait short.
document.getElementById("retry-now")?.addEventListener("click", () => topics.connect());

if (document.getElementById("username")) {
  online.join().catch(() => {}); // refused only when logged out: nothing to show then
}
topics.connect();
showConnection();
