// Contacts page: attribute filter rows, bulk selection. Everything else is HTMX.
(function () {
  "use strict";

  function bulkForm() { return document.getElementById("bulk-form"); }

  function refreshSelection() {
    var form = bulkForm();
    if (!form) return;
    var boxes = document.querySelectorAll('input[name="ids"][form="bulk-form"]');
    var checked = 0;
    boxes.forEach(function (box) {
      if (box.checked) checked += 1;
      var row = box.closest("tr");
      if (row) row.classList.toggle("is-selected", box.checked);
    });
    var count = form.querySelector("[data-selected-count]");
    var all = form.querySelector('input[name="scope"]');
    if (count) count.textContent = all && all.checked ? "All matching" : String(checked);
    form.hidden = checked === 0 && !(all && all.checked);
    var master = document.querySelector("[data-select-all]");
    if (master) {
      master.checked = boxes.length > 0 && checked === boxes.length;
      master.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-select-all]")) {
      document.querySelectorAll('input[name="ids"][form="bulk-form"]').forEach(function (box) { box.checked = target.checked; });
      refreshSelection();
    } else if (target.matches('input[name="ids"][form="bulk-form"], #bulk-form input[name="scope"]')) {
      refreshSelection();
    } else if (target.matches('#filter-form select[name="opt_in"], #filter-form input[name="tag"], #filter-form input[name="tag_mode"]')) {
      if (window.htmx) window.htmx.trigger(target.form, "submit");
    }
  });

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-rule]");
    if (add) {
      var template = document.getElementById("rule-template");
      var rules = document.getElementById("rules");
      if (template && rules) {
        rules.appendChild(template.content.cloneNode(true));
        var inputs = rules.querySelectorAll('input[name="a_key"]');
        if (inputs.length) inputs[inputs.length - 1].focus();
      }
      return;
    }
    var remove = event.target.closest("[data-remove-rule]");
    if (remove) {
      var form = remove.closest("form");
      remove.closest(".rule-row").remove();
      if (form && window.htmx) window.htmx.trigger(form, "submit");
      return;
    }
    var confirmButton = event.target.closest("[data-confirm]");
    if (confirmButton && !window.confirm(confirmButton.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:afterSettle", refreshSelection);
  document.addEventListener("DOMContentLoaded", refreshSelection);

  // Progress of a running import: nothing to do here, the partial polls itself.
})();
