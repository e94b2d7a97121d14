// A direct-message conversation: a message from the other person is shown as it arrives.
const list = document.getElementById("messages");
const peer = list.dataset.peer;

window.addEventListener("demo:notification", (event) => {
  const notification = event.detail;
  if (notification.kind !== "message" || notification.data.sender !== peer) return;
  // A message sent while the page loaded can be in its HTML and caught up by the socket too.
  if (list.querySelector(`li[data-id="${notification.data.id}"]`)) return;
  const item = document.createElement("li");
  item.dataset.id = notification.data.id;
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = peer;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = notification.data.text;
  item.append(author, " ", text);
  list.append(item);
});
