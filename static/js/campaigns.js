/* Campaign pages: attribute condition rows on the create form, and closing confirmations. */
(function () {
  "use strict";

  function changed(form) {
    if (form) form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-rule]");
    if (add) {
      var rules = document.getElementById("rules");
      var first = rules && rules.querySelector(".rule-row");
      if (!first) return;
      var row = first.cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      row.querySelector("select").selectedIndex = 0;
      rules.appendChild(row);
      row.querySelector("input").focus();
      return;
    }
    var remove = event.target.closest("[data-remove-rule]");
    if (remove) {
      var list = remove.closest(".rules");
      var current = remove.closest(".rule-row");
      if (list.querySelectorAll(".rule-row").length > 1) {
        current.remove();
      } else {
        current.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      }
      changed(list.closest("form"));
      return;
    }
    var close = event.target.closest("[data-close-details]");
    if (close) {
      var details = close.closest("details");
      if (details) details.open = false;
    }
  });
})();
