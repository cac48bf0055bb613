// Select-all checkbox for bulk actions, and closing the search dropdown on Escape.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll("input[name=selected]").forEach((box) => { box.checked = all.checked; });
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    const dropdown = document.getElementById("search-dropdown");
    if (dropdown) dropdown.innerHTML = "";
  }
});
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle-filters]");
  if (toggle) toggle.closest("form").classList.add("kehu-filters-open");
});

// The Content-Security-Policy allows no inline script, so pages ask for behaviour with data
// attributes and these delegated listeners (they also cover content swapped in by htmx):
//   <form data-confirm="…">             asks before submitting
//   <button data-confirm="…">           asks before its own submission (e.g. with formaction)
//   <select data-autosubmit>            submits its form when changed
//   <a data-history-back>               goes back a page
//   <form data-enter-guard>             Enter in a field does not submit the form; a field
//     with data-enter-click="selector" clicks that button of the form instead
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-confirm], input[type=submit][data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
    return;
  }
  const back = event.target.closest("a[data-history-back]");
  if (back && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
}, true);
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
document.addEventListener("change", (event) => {
  const field = event.target.closest("[data-autosubmit]");
  if (field && field.form) field.form.requestSubmit();
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
  const form = event.target.closest("form[data-enter-guard]");
  if (!form) return;
  event.preventDefault();
  const selector = event.target.dataset.enterClick;
  const target = selector && form.querySelector(selector);
  if (target) target.click();
});
