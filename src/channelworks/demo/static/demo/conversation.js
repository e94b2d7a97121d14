// A direct-message conversation: a message from the other person is shown as it arrives.
const list = document.getElementById("messages");
const peer = list.dataset.peer;

window.addEventListener("demo:notification", (event) => {
  const notification = event.detail;
  if (notification.kind !== "message" || notification.data.sender !== peer) return;
  const item = document.createElement("li");
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = peer;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = notification.data.text;
  item.append(author, " ", text);
  list.append(item);
});
