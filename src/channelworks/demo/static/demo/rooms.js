// The room list: unread counts that follow new messages.
import { watchRooms } from "./unread.js";

watchRooms(document.getElementById("username")?.textContent);
