// Times in the browser's time zone: every <time datetime="..."> of the page (and those the
// page adds with localTime) shows the local time, with the full date and zone as its title;
// the footer names the zone.

export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

// Fill `element` (a <time>) with the local time of the ISO date `iso`.
export function localTime(element, iso = element.dateTime) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return element;
  element.dateTime = iso;
  const today = new Date().toDateString() === date.toDateString();
  element.textContent = today ? clock.format(date) : `${day.format(date)}, ${clock.format(date)}`;
  element.title = `${full.format(date)} (${zone})`;
  return element;
}

for (const element of document.querySelectorAll("time[datetime]")) localTime(element);
const label = document.getElementById("time-zone");
if (label) label.textContent = zone;
