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
