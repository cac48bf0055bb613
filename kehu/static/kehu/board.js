// Opportunity board: native HTML5 drag and drop (and a stage picker on each card for touch
// and keyboard). A drop posts to the card's move URL; a refusal puts the card back.
(() => {
  const board = document.getElementById("board");
  if (!board || board.dataset.canChange !== "1") return;
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
  const money = new Intl.NumberFormat(document.documentElement.lang || undefined, {
    minimumFractionDigits: 2, maximumFractionDigits: 2,
  });
  let dragged = null;
  let origin = null; // {parent, next} to snap back to

  function showMessage(text, kind = "danger") {
    const box = document.getElementById("board-messages");
    const alert = document.createElement("div");
    alert.className = `alert alert-${kind} alert-dismissible fade show`;
    alert.setAttribute("role", "alert");
    alert.textContent = text;
    const close = document.createElement("button");
    close.type = "button"; close.className = "btn-close"; close.dataset.bsDismiss = "alert";
    alert.appendChild(close);
    box.replaceChildren(alert);
  }

  // A column shows its first cards only: its count and total come from the server and
  // move by the amount of each card that leaves or joins it.
  function addToColumn(column, count, amount) {
    const counter = column.querySelector("[data-count]");
    const sum = column.querySelector("[data-total]");
    if (!counter || !sum) return; // a searched board with too many matches to count
    counter.dataset.count = String(Number(counter.dataset.count) + count);
    sum.dataset.total = String(parseFloat(sum.dataset.total) + amount);
    counter.textContent = Number(counter.dataset.count).toLocaleString();
    sum.textContent = `¥${money.format(parseFloat(sum.dataset.total))}`;
  }

  function moveTotals(card, fromColumn, toColumn) {
    if (fromColumn === toColumn) return;
    const amount = parseFloat(card.dataset.amount || "0");
    addToColumn(fromColumn, -1, -amount);
    addToColumn(toColumn, 1, amount);
  }

  function snapBack(card, from, counted) {
    const column = card.closest(".kehu-board-column");
    if (from.next && from.next.parentNode === from.parent) from.parent.insertBefore(card, from.next);
    else from.parent.appendChild(card);
    if (counted) moveTotals(card, column, from.parent.closest(".kehu-board-column"));
    syncPicker(card);
  }

  function syncPicker(card) {
    const picker = card.querySelector(".kehu-board-move");
    if (picker) picker.value = card.closest(".kehu-board-cards").dataset.stage;
  }

  function askLostReason() {
    return new Promise((resolve) => {
      const element = document.getElementById("lost-dialog");
      const form = document.getElementById("lost-form");
      const input = document.getElementById("lost-reason");
      const dialog = bootstrap.Modal.getOrCreateInstance(element);
      let answered = false;
      input.value = "";
      const onSubmit = (event) => {
        event.preventDefault();
        if (!input.value.trim()) { input.classList.add("is-invalid"); return; }
        answered = true;
        dialog.hide();
        resolve(input.value.trim());
      };
      form.addEventListener("submit", onSubmit, { once: false });
      element.addEventListener("hidden.bs.modal", () => {
        form.removeEventListener("submit", onSubmit);
        input.classList.remove("is-invalid");
        if (!answered) resolve(null);
      }, { once: true });
      element.addEventListener("shown.bs.modal", () => input.focus(), { once: true });
      dialog.show();
    });
  }

  async function commit(card, from) {
    const container = card.closest(".kehu-board-cards");
    const column = container.closest(".kehu-board-column");
    const position = Array.from(container.querySelectorAll(".kehu-board-card")).indexOf(card);
    const body = new URLSearchParams({
      stage: container.dataset.stage, position: String(position), version: card.dataset.version,
    });
    const movedColumn = from.parent !== container;
    if (movedColumn && column.dataset.kind === "lost") {
      const reason = await askLostReason();
      if (reason === null) { snapBack(card, from, false); return; }
      body.set("lost_reason", reason);
    }
    moveTotals(card, from.parent.closest(".kehu-board-column"), column);
    card.classList.add("is-saving");
    try {
      const response = await fetch(card.dataset.moveUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrf, "X-Requested-With": "fetch" },
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        snapBack(card, from, true);
        showMessage(data.error || board.dataset.error);
        return;
      }
      card.dataset.version = data.version;
      syncPicker(card);
    } catch (error) {
      snapBack(card, from, true);
      showMessage(board.dataset.error);
    } finally {
      card.classList.remove("is-saving");
    }
  }

  function insertionPoint(container, y) {
    const cards = Array.from(container.querySelectorAll(".kehu-board-card:not(.is-dragging)"));
    return cards.find((card) => {
      const box = card.getBoundingClientRect();
      return y < box.top + box.height / 2;
    }) || null;
  }

  board.addEventListener("dragstart", (event) => {
    const card = event.target.closest(".kehu-board-card");
    if (!card) return;
    dragged = card;
    origin = { parent: card.parentNode, next: card.nextElementSibling };
    card.classList.add("is-dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
  });
  board.addEventListener("dragover", (event) => {
    const container = event.target.closest(".kehu-board-column")?.querySelector(".kehu-board-cards");
    if (!dragged || !container) return;
    event.preventDefault();
    const before = insertionPoint(container, event.clientY);
    if (before !== dragged) container.insertBefore(dragged, before);
  });
  board.addEventListener("drop", (event) => {
    if (!dragged) return;
    event.preventDefault();
  });
  board.addEventListener("dragend", () => {
    if (!dragged) return;
    const card = dragged, from = origin;
    dragged = null;
    card.classList.remove("is-dragging");
    const unchanged = card.parentNode === from.parent && card.nextElementSibling === from.next;
    if (!unchanged) commit(card, from);
  });
  board.addEventListener("change", (event) => {
    const picker = event.target.closest(".kehu-board-move");
    if (!picker) return;
    const card = picker.closest(".kehu-board-card");
    const from = { parent: card.parentNode, next: card.nextElementSibling };
    const target = board.querySelector(`.kehu-board-cards[data-stage="${picker.value}"]`);
    if (!target || target === from.parent) return;
    target.prepend(card);
    commit(card, from);
  });
})();
