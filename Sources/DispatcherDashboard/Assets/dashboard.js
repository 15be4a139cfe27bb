// The dashboard's only script: local times, and a question before each action.
// Pages work without it (times then stay in UTC, actions go through unasked).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const local = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  for (const element of document.querySelectorAll("time[datetime]")) {
    const date = new Date(element.getAttribute("datetime"));
    if (Number.isNaN(date.getTime())) continue;
    element.title = date.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    element.textContent = local.format(date);
    element.dataset.local = "true";
  }

  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Changing a select in the filter bar applies it at once.
  const filters = document.getElementById("filters");
  if (filters) {
    for (const select of filters.querySelectorAll("select")) {
      select.addEventListener("change", () => filters.requestSubmit());
    }
  }
});
