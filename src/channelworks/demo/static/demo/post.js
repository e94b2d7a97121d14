// A post's page: new comments and the like count arrive live for everyone reading it, from
// the post's topic on the site's topics socket (social/topics.py, PostTopic). The topic keeps
// a short history: the page joins from the position it was made at, and after a reconnect
// from the last one it got, so what was broadcast meanwhile arrives first; when it cannot
// (the server lost its log), the page reloads.
import { topics } from "./live.js";
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

function showLikes(count) {
  likes.textContent = String(count);
  plural.textContent = count === 1 ? "" : "s";
}

const topic = topics.topic(`post:${post}`);
// Where the topic's log stood when the page was made: the join replays what came after.
topic.position = JSON.parse(document.getElementById("post-position").textContent);
topic.on("comment", addComment);
topic.on("likes", ({ count }) => showLikes(count));
topic.onJoin(({ recovered }) => {
  if (recovered === false) window.location.reload(); // gone from the log (a restarted server)
});
topic.join().catch(() => {});
