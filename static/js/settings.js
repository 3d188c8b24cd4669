// Settings pages: copy buttons. <button data-copy="#element-id"> copies that element's value or
// text; the button says "Copied" for a moment.
(function () {
  "use strict";
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = "value" in source && source.value !== undefined ? source.value : source.textContent;
    copyText(text.trim()).then(function () {
      var label = button.querySelector("span");
      var before = label ? label.textContent : "";
      button.classList.add("is-copied");
      if (label) label.textContent = "Copied";
      setTimeout(function () { button.classList.remove("is-copied"); if (label) label.textContent = before; }, 1600);
    });
  });
})();
