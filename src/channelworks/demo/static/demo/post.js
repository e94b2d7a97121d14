// A post's page: its author sees new comments and likes arrive, from the notifications the
// author gets for them (social/views.py puts the comment and the like count in their data).
import { localTime } from "./time.js";

const post = Number(document.getElementById("post").dataset.id);
const comments = document.getElementById("comments");
const likes = document.getElementById("like-count");
const plural = document.getElementById("like-plural");

function addComment(comment) {
  if (comments.querySelector(`li[data-id="${comment.id}"]`)) return;
  document.getElementById("no-comments")?.remove();
  const item = document.createElement("li");
  item.dataset.id = comment.id;
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = comment.author;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = comment.text;
  item.append(author, " ", text, " ", localTime(document.createElement("time"), comment.created));
  comments.append(item);
}

window.addEventListener("demo:notification", (event) => {
  const { kind, data } = event.detail;
  if (data?.post !== post) return;
  if (kind === "comment" && data.comment) addComment(data.comment);
  if (kind === "like" && typeof data.likes === "number") {
    likes.textContent = String(data.likes);
    plural.textContent = data.likes === 1 ? "" : "s";
  }
});
