// Filters of the index page's matrix and requirement index.  Rows carry what
// they are filtered on as data attributes, so filtering thousands of rows is
// one pass over them with no layout work until the end.
"use strict";

function words(value) { return value ? value.split(" ") : []; }

function filterMatrix() {
  const form = document.getElementById("filters");
  const verdicts = new Set(Array.from(form.querySelectorAll("input[name=verdict]:checked"), e => e.value));
  const rfc = form.elements.rfc.value, level = form.elements.level.value;
  const state = form.elements.state.value, text = form.elements.text.value.trim().toLowerCase();
  const rows = document.querySelectorAll("#matrix tbody tr");
  let shown = 0;
  for (const row of rows) {
    const d = row.dataset;
    const ok = words(d.statuses).some(s => verdicts.has(s))
      && (!rfc || words(d.rfcs).includes(rfc))
      && (!level || words(d.levels).includes(level))
      && (!state || words(d.states).includes(state))
      && (!text || d.case.includes(text) || d.title.includes(text));
    row.hidden = !ok;
    if (ok) shown++;
  }
  document.getElementById("matrix-count").textContent = `${shown} of ${rows.length} cases shown`;
}

function filterRequirements() {
  const form = document.getElementById("req-filters");
  const which = form.elements.which.value, rfc = form.elements.rfc.value;
  const rows = document.querySelectorAll("#requirements tbody tr");
  let shown = 0;
  for (const row of rows) {
    const d = row.dataset;
    const ok = (which === "all" || d.coverage === which) && (!rfc || d.rfc === rfc);
    row.hidden = !ok;
    if (ok) shown++;
  }
  document.getElementById("req-count").textContent = `${shown} of ${rows.length} requirements shown`;
}

function showSections() {
  const bySection = document.getElementById("summary-filters").elements.sections.checked;
  for (const row of document.querySelectorAll("#compliance tbody tr:not(.total)")) {
    row.hidden = !bySection;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const summary = document.getElementById("summary-filters");
  if (summary) {
    summary.addEventListener("change", showSections);
    showSections();
  }
  const filters = document.getElementById("filters");
  if (filters) {
    // "change" too: scripted choices of a select fire only that.
    filters.addEventListener("input", filterMatrix);
    filters.addEventListener("change", filterMatrix);
    filterMatrix();
  }
  const reqFilters = document.getElementById("req-filters");
  if (reqFilters) {
    reqFilters.addEventListener("input", filterRequirements);
    reqFilters.addEventListener("change", filterRequirements);
    filterRequirements();
  }
});
