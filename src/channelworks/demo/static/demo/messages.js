// One chat message as a list item: avatar (the author's thumbnail, or their initial on a
// colour of their own), name and local time, the text. Consecutive messages of one author
// within five minutes are grouped: only the first shows the avatar and the name. The
// signed-in user's own messages are told apart (class "mine").

import { localTime } from "./time.js";

const GROUP_WITHIN_MS = 5 * 60 * 1000;

function hue(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) % 360;
  return hash;
}

export function avatar(name, url) {
  const element = document.createElement("span");
  element.className = "avatar";
  element.setAttribute("aria-hidden", "true");
  if (url) {
    const image = document.createElement("img");
    image.src = url;
    image.alt = "";
    image.width = image.height = 36;
    element.append(image);
  } else {
    paint(element, name);
  }
  return element;
}

// An avatar without a picture: the name's initial on a colour of its own.
export function paint(element, name) {
  element.textContent = name.slice(0, 1).toUpperCase();
  element.style.background = `hsl(${hue(name)} 55% 45%)`;
}

// message: {id, author, avatar, text, created}; me: the signed-in user's name.
export function messageItem(message, me) {
  const item = document.createElement("li");
  item.className = "msg";
  item.classList.toggle("mine", message.author === me);
  item.dataset.id = message.id;
  item.dataset.author = message.author;
  item.dataset.created = message.created;
  const body = document.createElement("div");
  body.className = "bubble";
  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author;
  meta.append(author, " ", localTime(document.createElement("time"), message.created));
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = message.text; // text, never HTML: "<b>" shows as typed
  body.append(meta, text);
  item.append(avatar(message.author, message.avatar), body);
  return item;
}

// Mark `item` as the continuation of the one before it, or not.
export function regroup(item) {
  if (!item) return;
  const previous = item.previousElementSibling;
  const grouped =
    previous !== null &&
    previous.dataset.author === item.dataset.author &&
    new Date(item.dataset.created) - new Date(previous.dataset.created) < GROUP_WITHIN_MS;
  item.classList.toggle("grouped", grouped);
}
