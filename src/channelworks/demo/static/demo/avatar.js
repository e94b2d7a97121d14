// The avatar page: the thumbnail appears when the worker's notification arrives.
const image = document.getElementById("thumbnail");
const status = document.getElementById("thumbnail-status");

window.addEventListener("demo:notification", (event) => {
  const notification = event.detail;
  if (notification.kind !== "thumbnail") return;
  status.textContent = notification.text;
  if (notification.data.thumbnail_url) {
    image.src = `${notification.data.thumbnail_url}?v=${notification.id}`;
    image.hidden = false;
  }
});
