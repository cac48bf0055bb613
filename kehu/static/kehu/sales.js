// Sales pages: the customer and product pickers, the line editor, dialogs and confirmations.
// No inline scripts: everything hangs off data attributes. Amounts are never computed here;
// the line editor asks the server (htmx, kehu.sales.totals) whenever a line changes.
(() => {
  "use strict";

  const debounce = (fn, wait) => {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), wait);
    };
  };

  // --- pickers: a search box, results from the server, the chosen id in a hidden input ------

  const parts = (picker) => ({
    hidden: picker.querySelector("[data-picker-value]"),
    input: picker.querySelector("[data-picker-input]"),
    results: picker.querySelector("[data-picker-results]"),
  });

  function closePicker(picker) {
    const { input, results } = parts(picker);
    results.replaceChildren();
    input.setAttribute("aria-expanded", "false");
  }

  function closeAllPickers(except) {
    document.querySelectorAll("[data-picker]").forEach((picker) => {
      if (picker !== except) closePicker(picker);
    });
  }

  function options(picker) {
    return Array.from(parts(picker).results.querySelectorAll("[data-picker-option]"));
  }

  function highlight(picker, index) {
    const all = options(picker);
    all.forEach((option, i) => {
      option.classList.toggle("active", i === index);
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    if (all[index]) all[index].scrollIntoView({ block: "nearest" });
  }

  function fillLine(row, option) {
    if (!row) return;
    const field = (suffix) => row.querySelector(`[name$="-${suffix}"]`);
    if (field("unit_price") && option.dataset.price !== undefined) {
      field("unit_price").value = option.dataset.price;
    }
    if (field("tax_rate") && option.dataset.tax !== undefined) {
      field("tax_rate").value = option.dataset.tax;
    }
    if (field("description")) field("description").value = ""; // named after the new product
    const quantity = field("quantity");
    if (quantity) {
      if (!quantity.value) quantity.value = "1";
      quantity.focus();
      quantity.select();
    }
  }

  function choose(option) {
    const picker = option.closest("[data-picker]");
    const { hidden, input } = parts(picker);
    hidden.value = option.dataset.id;
    input.value = option.dataset.label;
    input.dataset.chosen = option.dataset.label;
    input.classList.remove("is-invalid");
    closePicker(picker);
    if (picker.dataset.picker === "product") fillLine(picker.closest("[data-line-row]"), option);
    hidden.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", (event) => {
    const option = event.target.closest("[data-picker-option]");
    if (option) {
      event.preventDefault();
      choose(option);
      return;
    }
    closeAllPickers(event.target.closest("[data-picker]"));
  });

  document.addEventListener("keydown", (event) => {
    const input = event.target.closest("[data-picker-input]");
    if (!input) return;
    const picker = input.closest("[data-picker]");
    const all = options(picker);
    const current = all.findIndex((option) => option.classList.contains("active"));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!all.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight(picker, (current + step + all.length) % all.length);
    } else if (event.key === "Enter") {
      event.preventDefault(); // never submit the form from a search box
      if (all[current >= 0 ? current : 0]) choose(all[current >= 0 ? current : 0]);
    } else if (event.key === "Escape") {
      closePicker(picker);
    }
  });

  // Typing something else than the chosen name forgets the choice: no silent stale id.
  document.addEventListener("input", (event) => {
    const input = event.target.closest("[data-picker-input]");
    if (!input) return;
    const { hidden } = parts(input.closest("[data-picker]"));
    const chosen = input.dataset.chosen ?? input.defaultValue;
    if (hidden.value && input.value !== chosen) hidden.value = "";
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    const results = event.target.closest ? event.target.closest("[data-picker-results]") : null;
    if (!results) return;
    const picker = results.closest("[data-picker]");
    const { input } = parts(picker);
    if (document.activeElement !== input) {
      closePicker(picker); // the answer came after the user moved on
      return;
    }
    closeAllPickers(picker);
    input.setAttribute("aria-expanded", results.children.length ? "true" : "false");
  });

  // --- the line editor ------------------------------------------------------------------------

  const editor = () => document.getElementById("line-editor");
  const linesChanged = () => {
    const element = editor();
    if (element) element.dispatchEvent(new CustomEvent("kehu:lines-changed", { bubbles: true }));
  };
  const linesChangedSoon = debounce(linesChanged, 500);

  function addLine() {
    const element = editor();
    const template = document.getElementById("line-template");
    if (!element || !template) return;
    const index = Number(element.dataset.nextIndex || "1");
    element.dataset.nextIndex = String(index + 1);
    const body = element.querySelector("#line-rows");
    body.insertAdjacentHTML("beforeend", template.innerHTML.replaceAll("__prefix__", String(index)));
    const row = body.lastElementChild;
    if (window.htmx) window.htmx.process(row);
    const search = row.querySelector("[data-picker-input]");
    if (search) search.focus();
  }

  function removeLine(button) {
    const row = button.closest("[data-line-row]");
    const body = row.parentElement;
    if (body.querySelectorAll("[data-line-row]").length > 1) {
      row.remove();
    } else {
      // The last row is emptied rather than removed, so there is always a row to fill.
      row.querySelectorAll("input").forEach((input) => { input.value = ""; });
      row.querySelectorAll(".is-invalid").forEach((input) => input.classList.remove("is-invalid"));
    }
    linesChanged();
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-line-add]")) {
      event.preventDefault();
      addLine();
      return;
    }
    const remove = event.target.closest("[data-line-remove]");
    if (remove) {
      event.preventDefault();
      removeLine(remove);
    }
  });

  document.addEventListener("input", (event) => {
    if (event.target.closest(".kehu-line-number")) linesChangedSoon();
  });

  document.addEventListener("change", (event) => {
    // The currency is outside the line editor; its symbol is part of the totals.
    if (event.target.name === "currency" && editor()) linesChanged();
  });

  // --- dialogs (form[data-confirm] is handled by kehu.js on every page) ----------------------

  function openFlaggedDialogs() {
    document.querySelectorAll(".modal[data-kehu-open]").forEach((element) => {
      if (window.bootstrap) window.bootstrap.Modal.getOrCreateInstance(element).show();
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", openFlaggedDialogs);
  } else {
    openFlaggedDialogs();
  }
})();
