// The site's topics socket (channelworks' browser client, `Channelworks`, from
// channelworks/client.js): every page of a logged-in user joins the topic "online", so the
// people list can show who is online; the room pages join their room's topic on it too
// (chat.js: who is here, who is typing). Messages and notifications have sockets of their own.

// Waits between reconnects as the page's other sockets (socket.js): at most 5 s.
export const topics = new Channelworks.Socket("/ws/topics/", { backoffMax: 5000 });
topics.connect();
// "Retry now" in the header: connect() cuts a pending wait short.
window.addEventListener("demo:retry", () => topics.connect());

const online = topics.topic("online");
// Who has a page of the site open: one key per user, one meta per tab.
export const onlineNow = new Channelworks.Presence(online);
online.join().catch(() => {}); // refused only when logged out: nothing to show then
