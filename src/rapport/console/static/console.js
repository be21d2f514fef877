// Rapport console: progressive enhancement only. Every page works without this file.
"use strict";

// Search as you type: fetch the results list as HTML and put it in place.
function liveSearch(input) {
  const target = document.getElementById(input.getAttribute("aria-controls"));
  let timer = null;
  let ticket = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++ticket;
      const url = input.dataset.live + encodeURIComponent(input.value);
      try {
        const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (mine !== ticket) return;
        if (answer.status === 401) { window.location.reload(); return; }
        if (answer.ok) {
          target.innerHTML = await answer.text();
          const here = "/search?q=" + encodeURIComponent(input.value);
          history.replaceState(null, "", input.value ? here : "/");
        }
      } catch (error) {
        /* the form still works: pressing Enter submits it */
      }
    }, 200);
  });
}

// Endless timeline: when the "show older events" link comes into view, fetch the next page in place.
function endlessTimeline(list) {
  let busy = false;
  const observer = new IntersectionObserver(async (entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting || busy) continue;
      const link = entry.target;
      busy = true;
      observer.unobserve(link);
      try {
        const url = link.getAttribute("href") + "&partial=1";
        const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (answer.status === 401) { window.location.reload(); return; }
        if (!answer.ok) { busy = false; return; }
        const holder = document.createElement("ol");
        holder.innerHTML = await answer.text();
        const item = link.closest("li");
        for (const child of Array.from(holder.children)) list.insertBefore(child, item);
        item.remove();
        watch();
      } finally {
        busy = false;
      }
    }
  }, { rootMargin: "400px" });
  function watch() {
    const more = list.querySelector("a[data-more]");
    if (more) observer.observe(more);
  }
  watch();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const input of document.querySelectorAll("input[data-live]")) liveSearch(input);
  const timeline = document.getElementById("timeline");
  if (timeline && "IntersectionObserver" in window) endlessTimeline(timeline);
});
