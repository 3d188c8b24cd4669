// The template builder (templates/message_templates/new.html): shows the fields of the chosen
// category and header, counts characters, adds and removes buttons, inserts variables. The
// preview itself is rendered by the server (hx-post on the form).
(function () {
  "use strict";
  var form = document.getElementById("builder");
  if (!form) return;
  function sync() {
    var auth = (form.querySelector("[name=category]:checked") || {}).value === "AUTHENTICATION";
    form.querySelectorAll("[data-not-auth]").forEach(function (el) { el.classList.toggle("is-hidden", auth); });
    form.querySelectorAll("[data-auth]").forEach(function (el) { el.classList.toggle("is-hidden", !auth); });
    var header = (form.querySelector("[name=header_type]:checked") || {}).value || "none";
    form.querySelectorAll("[data-header]").forEach(function (el) {
      el.classList.toggle("is-hidden", el.getAttribute("data-header").split(" ").indexOf(header) < 0);
    });
    form.querySelectorAll("[data-count]").forEach(function (el) {
      var input = form.querySelector("[name=" + el.getAttribute("data-count") + "]");
      if (input) el.textContent = input.value.length + " / " + el.getAttribute("data-max");
    });
  }
  form.addEventListener("input", sync);
  form.addEventListener("change", sync);
  sync();
  var HINTS = {
    url: ["https://example.com/track/{{1}}", "Example: https://example.com/track/A12"],
    phone_number: ["Phone with country code, e.g. 15550051310", ""],
    copy_code: ["", "Example code, e.g. SAVE25"],
    quick_reply: ["", ""]
  };
  function placeholders(row, kind) {
    var hints = HINTS[kind] || ["", ""];
    row.querySelector("[name=button_value]").placeholder = hints[0];
    row.querySelector("[name=button_example]").placeholder = hints[1];
  }
  function ring() { htmx.trigger(form, "button-change"); }
  form.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-button]");
    if (add) {
      var row = document.getElementById("button-template").content.firstElementChild.cloneNode(true);
      var kind = add.getAttribute("data-add-button");
      row.setAttribute("data-kind", kind);
      row.querySelector("[name=button_kind]").value = kind;
      placeholders(row, kind);
      document.getElementById("button-rows").appendChild(row);
      var first = row.querySelector("[name=button_text]");
      if (kind === "copy_code") first = row.querySelector("[name=button_example]");
      first.focus();
      ring();
      return;
    }
    var remove = event.target.closest("[data-remove-button]");
    if (remove) { remove.closest(".btn-row").remove(); ring(); return; }
    if (event.target.closest("#add-variable")) {
      var body = document.getElementById("body");
      var named = (form.querySelector("[name=parameter_format]:checked") || {}).value === "named";
      var token;
      if (named) {
        var name = window.prompt("Variable name (lowercase letters, digits, underscores)", "first_name");
        if (!name) return;
        token = "{{" + name.trim().toLowerCase().replace(/[^a-z0-9_]+/g, "_") + "}}";
      } else {
        var numbers = (body.value.match(/\{\{\s*(\d+)\s*\}\}/g) || []).map(function (m) { return parseInt(m.replace(/\D/g, ""), 10); });
        token = "{{" + (numbers.length ? Math.max.apply(null, numbers) + 1 : 1) + "}}";
      }
      var start = body.selectionStart, end = body.selectionEnd;
      body.value = body.value.slice(0, start) + token + body.value.slice(end);
      body.focus();
      body.selectionStart = body.selectionEnd = start + token.length;
      body.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });
  form.addEventListener("change", function (event) {
    if (event.target.name === "button_kind") {
      var row = event.target.closest(".btn-row");
      row.setAttribute("data-kind", event.target.value);
      placeholders(row, event.target.value);
    }
  });
})();
