// Step rows: the approver kind shows its picker; move up/down and remove reorder the rows
// (their order in the page is the order saved).
document.addEventListener("change", (event) => {
  const kind = event.target.closest(".rule-step select[name=approver_kind]");
  if (kind) kind.closest(".rule-step").dataset.kind = kind.value;
});
document.addEventListener("click", (event) => {
  const row = event.target.closest(".rule-step");
  if (!row) return;
  if (event.target.closest("[data-step-remove]")) { row.remove(); return; }
  const move = event.target.closest("[data-step-move]");
  if (!move) return;
  if (move.dataset.stepMove === "-1" && row.previousElementSibling) row.parentNode.insertBefore(row, row.previousElementSibling);
  if (move.dataset.stepMove === "1" && row.nextElementSibling) row.parentNode.insertBefore(row.nextElementSibling, row);
});
