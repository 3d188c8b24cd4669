/* Parley inbox: live rows, the composer, keyboard shortcuts. No build step; htmx does the
   requests, this file only places what the server sends and handles the keyboard. */
(function () {
  "use strict";

  htmx.config.historyCacheSize = 0;      // back/forward reloads the page: never a stale snapshot
  htmx.config.refreshOnHistoryMiss = true;

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const NEAR_BOTTOM = 60;

  function isTyping(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  /* ---------------------------------------------------------------- thread scrolling */

  function scroller() { return $("#messages-scroll"); }
  function atBottom() {
    const s = scroller();
    return !s || s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM;
  }
  function toBottom() {
    const s = scroller();
    if (s) s.scrollTop = s.scrollHeight;
    const jump = $("#jump-latest");
    if (jump) jump.hidden = true;
  }
  function currentThreadId() {
    const thread = $("#thread");
    return thread ? thread.dataset.conversation : null;
  }

  /* Day separators: one before the first message of each day, none twice. */
  function normalizeDays() {
    const list = $("#messages");
    if (!list) return;
    let previousDay = null;
    for (const node of Array.from(list.children)) {
      if (node.classList.contains("day-sep")) {
        node.remove();
        continue;
      }
      const day = node.dataset.day;
      if (!day || node.hidden) continue;
      if (day !== previousDay) {
        const sep = document.createElement("div");
        sep.className = "day-sep";
        sep.dataset.day = day;
        const label = document.createElement("span");
        label.textContent = node.dataset.dayLabel || day;
        sep.appendChild(label);
        list.insertBefore(sep, node);
        previousDay = day;
      }
    }
  }

  /* ---------------------------------------------------------------- live rows */

  function messageRows(list) { return $$(":scope > .msg", list); }

  function upsertMessage(node) {
    const list = $("#messages");
    if (!list || node.dataset.c !== currentThreadId()) return false;
    const id = Number(node.dataset.id);
    const existing = $(`:scope > .msg[data-id="${id}"]`, list);
    if (existing) {
      if (existing.dataset.v === node.dataset.v) return false;
      existing.replaceWith(node);
      return true;
    }
    const rows = messageRows(list);
    const later = rows.find((row) => Number(row.dataset.id) > id);
    if (later) {
      const oldest = rows.length ? Number(rows[0].dataset.id) : 0;
      if (id < oldest && list.dataset.hasOlder === "1") return false; // belongs to a page not loaded
      list.insertBefore(node, later);
    } else {
      const empty = $(".thread-start", list);
      if (empty) empty.remove();
      list.appendChild(node);
    }
    return "added";
  }

  function drainMessages(stage) {
    const nodes = Array.from(stage.children);
    if (!nodes.length) return;
    const wasAtBottom = atBottom();
    let added = false;
    let changed = false;
    for (const node of nodes) {
      node.remove();
      const result = upsertMessage(node);
      if (result) {
        changed = true;
        htmx.process(node);
      }
      if (result === "added") added = true;
    }
    if (!changed) return;
    normalizeDays();
    if (wasAtBottom) {
      toBottom();
    } else if (added) {
      const jump = $("#jump-latest");
      if (jump) jump.hidden = false;
    }
  }

  function rowKey(row) { return [Number(row.dataset.ts || 0), Number(row.dataset.id || 0)]; }
  function newerThan(a, b) { return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]); }

  function upsertConversation(node) {
    const list = $("#conv-list");
    if (!list || node.dataset.f !== list.dataset.f) return;
    const id = node.dataset.id;
    const existing = $(`:scope > .conv-row[data-id="${id}"]`, list);
    const match = node.dataset.match;
    if (match === "0") {
      if (existing) existing.remove();
      return;
    }
    if (existing && existing.dataset.v === node.dataset.v) return;
    if (match === "update") {
      if (existing) existing.replaceWith(node);
      return;
    }
    if (existing) existing.remove();
    const key = rowKey(node);
    const rows = $$(":scope > .conv-row", list);
    const after = rows.find((row) => newerThan(key, rowKey(row)));
    if (after) {
      list.insertBefore(node, after);
    } else if (!$(":scope > .conv-more", list)) {
      list.insertBefore(node, $(":scope > .conv-empty", list));
    } else {
      return; // sorts below the loaded page: the next page brings it
    }
    htmx.process(node);
  }

  function drainConversations(stage) {
    const nodes = Array.from(stage.children);
    if (!nodes.length) return;
    for (const node of nodes) {
      node.remove();
      upsertConversation(node);
    }
    markActive(currentThreadId());
    const list = $("#conv-list");
    if (list) {
      const empty = $(":scope > .conv-empty", list);
      if (empty) empty.hidden = !!$(":scope > .conv-row", list);
    }
  }

  function watchStage(id, drain) {
    const stage = document.getElementById(id);
    if (!stage) return;
    new MutationObserver(() => drain(stage)).observe(stage, { childList: true });
  }

  function markActive(conversationId) {
    $$(".conv-row.is-active").forEach((row) => {
      if (row.dataset.id !== conversationId) row.classList.remove("is-active");
    });
    if (conversationId) {
      const row = document.getElementById(`conv-${conversationId}`);
      if (row) row.classList.add("is-active");
    }
  }

  /* Keep popovers that were open across an out-of-band swap of the thread head. */
  let openBeforeSwap = [];
  document.addEventListener("htmx:oobBeforeSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "composer") {
      // The composer is replaced only when its mode changes (window closed, opted out):
      // two polls in flight may both carry the change, and the second must not wipe what
      // the agent started in the new one.
      const incoming = event.detail.fragment && event.detail.fragment.querySelector
        ? event.detail.fragment.querySelector("#composer") : null;
      if (incoming && incoming.dataset.mode === target.dataset.mode) event.detail.shouldSwap = false;
    }
    if (target && target.id === "thread-head") {
      openBeforeSwap = $$("details[open]", target).map((d) => d.id).filter(Boolean);
    }
  });
  document.addEventListener("htmx:oobAfterSwap", () => {
    for (const id of openBeforeSwap) {
      const details = document.getElementById(id);
      if (details) details.open = true;
    }
    openBeforeSwap = [];
  });

  /* Earlier messages are prepended: keep the reader where they were. */
  document.addEventListener("htmx:beforeSwap", (event) => {
    const elt = event.detail.elt;
    if (elt && elt.classList && elt.classList.contains("older")) {
      const s = scroller();
      if (!s) return;
      const fromBottom = s.scrollHeight - s.scrollTop;
      setTimeout(() => {
        normalizeDays();
        s.scrollTop = s.scrollHeight - fromBottom;
      }, 0);
    }
  });

  /* ---------------------------------------------------------------- thread lifecycle */

  function threadLoaded() {
    const id = currentThreadId();
    markActive(id);
    normalizeDays();
    toBottom();
    restoreDraft();
    updateWindows();
    const input = $("#composer-input");
    if (input) autoGrow(input);
    const title = $("#thread-head h2");
    document.title = (title ? `${title.textContent.trim()} · ` : "") + "Inbox · Parley";
  }

  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "thread-pane") threadLoaded();
    if (target && target.id === "list-body") markActive(currentThreadId());
  });

  document.addEventListener("htmx:configRequest", (event) => {
    // The filter form asks the page it is on (the open thread stays open and in the URL).
    if (event.detail.elt && event.detail.elt.id === "inbox-filters") event.detail.path = window.location.pathname;
  });

  document.addEventListener("click", (event) => {
    const link = event.target.closest(".conv-link");
    if (link) {
      saveDraft();
      markActive(link.closest(".conv-row").dataset.id);
    }
  });

  document.addEventListener("htmx:responseError", (event) => {
    const box = $("#thread-error") || $("#composer-error");
    if (!box) return;
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    box.textContent = status === 403 ? "You are not allowed to do that." :
      status === 404 ? "That is no longer here: reload the page." :
      `Something went wrong (${status || "network"}); nothing was lost, try again.`;
  });
  document.addEventListener("htmx:sendError", () => {
    const box = $("#thread-error");
    if (box) box.textContent = "Parley cannot be reached right now; updates resume when the connection is back.";
  });

  /* ---------------------------------------------------------------- the 24-hour window */

  function formatLeft(ms) {
    const minutes = Math.max(1, Math.floor(ms / 60000));
    const hours = Math.floor(minutes / 60);
    const rest = minutes % 60;
    if (hours) return rest ? `${hours} h ${rest} min` : `${hours} h`;
    return `${minutes} min`;
  }
  function updateWindows() {
    const now = Date.now();
    $$("[data-expires]").forEach((el) => {
      const expires = Number(el.dataset.expires || 0);
      const left = expires - now;
      const state = left <= 0 ? "closed" : left < 2 * 3600 * 1000 ? "closing" : "open";
      el.classList.remove("window-open", "window-closing", "window-closed");
      el.classList.add(`window-${state}`);
      const text = $(".th-window-text", el);
      if (text) text.textContent = left > 0 ? `Window closes in ${formatLeft(left)}` : "Window closed";
    });
  }
  setInterval(updateWindows, 30000);

  /* ---------------------------------------------------------------- composer */

  function autoGrow(textarea) {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 220)}px`;
    const composer = $("#composer");
    const col = textarea.closest(".thread-col");
    if (composer && col) col.style.setProperty("--composer-h", `${composer.offsetHeight}px`);
  }

  function draftKey() { return `parley:draft:${currentThreadId()}`; }
  function saveDraft() {
    const input = $("#reply-form #composer-input");
    if (!input || !currentThreadId()) return;
    try {
      if (input.value.trim()) sessionStorage.setItem(draftKey(), input.value);
      else sessionStorage.removeItem(draftKey());
    } catch (e) { /* storage may be full or disabled: drafts are a convenience */ }
  }
  function restoreDraft() {
    const input = $("#reply-form #composer-input");
    if (!input || input.value) return;
    try {
      const draft = sessionStorage.getItem(draftKey());
      if (draft) input.value = draft;
    } catch (e) { /* see saveDraft */ }
  }

  function setNoteMode(form, note) {
    form.classList.toggle("is-note", note);
    const input = $("#composer-input", form);
    if (input) input.placeholder = note ? input.dataset.placeholderNote : input.dataset.placeholderReply;
    const label = $(".send-label", form);
    if (label) label.textContent = note ? "Add note" : "Send";
  }

  function clearReply() {
    const field = $("#reply-to");
    if (field) field.value = "";
    const chip = $("#reply-chip");
    if (chip) chip.hidden = true;
  }
  function clearAttachment() {
    const input = $("#attach-input");
    if (input) input.value = "";
    const chip = $("#attach-chip");
    if (chip) chip.hidden = true;
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.name === "mode" && target.closest("#reply-form")) setNoteMode(target.form, target.value === "note");
    if (target.id === "attach-input") {
      const chip = $("#attach-chip");
      if (chip && target.files.length) {
        $("span", chip).textContent = target.files[0].name;
        chip.hidden = false;
      }
    }
  });

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (target.id === "composer-input") {
      autoGrow(target);
      suggestCanned(target);
      if (target.closest("#reply-form")) saveDraft();
    }
    if (target.matches("#template-form [data-var]")) {
      const value = target.value.trim();
      $$(`#template-form .var[data-var="${CSS.escape(target.dataset.var)}"]`).forEach((span) => {
        span.textContent = value || span.dataset.empty;
        span.classList.toggle("is-filled", !!value);
      });
    }
  });

  document.addEventListener("click", (event) => {
    const reply = event.target.closest("[data-reply]");
    if (reply) {
      const field = $("#reply-to");
      const chip = $("#reply-chip");
      if (field && chip) {
        field.value = reply.dataset.reply;
        $("strong", chip).textContent = reply.dataset.replyWho || "";
        $(".reply-chip-text span", chip).textContent = reply.dataset.replyText || "";
        chip.hidden = false;
        $("#composer-input").focus();
      }
      return;
    }
    if (event.target.closest("[data-reply-cancel]")) { clearReply(); return; }
    if (event.target.closest("[data-attach-cancel]")) { clearAttachment(); return; }
    const jump = event.target.closest("[data-jump]");
    if (jump) {
      const target = document.getElementById(jump.dataset.jump);
      if (target) {
        event.preventDefault();
        target.scrollIntoView({ block: "center", behavior: "smooth" });
        target.classList.remove("is-flash");
        void target.offsetWidth;
        target.classList.add("is-flash");
      }
      return;
    }
    if (event.target.closest("#jump-latest")) { toBottom(); return; }
    const emojiToggle = event.target.closest("[data-emoji-toggle]");
    if (emojiToggle) {
      const pop = $("#emoji-popover");
      if (pop) pop.hidden = !pop.hidden;
      return;
    }
    const emoji = event.target.closest("[data-emoji]");
    if (emoji) {
      insertAtCaret($("#composer-input"), emoji.dataset.emoji);
      $("#emoji-popover").hidden = true;
      return;
    }
    const tab = event.target.closest("[data-composer-tab]");
    if (tab) {
      const composer = tab.closest("#composer");
      $$("[data-composer-tab]", composer).forEach((b) => b.classList.toggle("is-on", b === tab));
      $$("[data-panel]", composer).forEach((p) => { p.hidden = p.dataset.panel !== tab.dataset.composerTab; });
      const field = $(`[data-panel="${tab.dataset.composerTab}"] textarea, [data-panel="${tab.dataset.composerTab}"] select`, composer);
      if (field) field.focus();
      return;
    }
    const canned = event.target.closest(".canned-opt");
    if (canned) { pickCanned(canned); return; }
    if (event.target.closest("[data-toggle-panel]")) { togglePanel(); return; }
    if (event.target.closest("[data-shortcuts-open]")) { openShortcuts(); return; }
    if (event.target.closest("[data-shortcuts-close]") || event.target.id === "shortcuts") { closeShortcuts(); return; }
    // A menu choice closes its menu (the label menu stays open for several toggles).
    const item = event.target.closest(".menu-pop .menu-item");
    if (item && !item.classList.contains("label-opt")) item.closest("details").open = false;
    // Clicking elsewhere closes menus and popovers.
    $$("details.menu-pop[open]").forEach((d) => { if (!d.contains(event.target)) d.open = false; });
    const pop = $("#emoji-popover");
    if (pop && !pop.hidden && !event.target.closest(".emoji-wrap")) pop.hidden = true;
    const menu = $("#canned-menu");
    if (menu && !menu.hidden && !event.target.closest(".composer-box")) menu.hidden = true;
  });

  function insertAtCaret(input, text) {
    if (!input) return;
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? input.value.length;
    input.setRangeText(text, start, end, "end");
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.detail.elt;
    if (form && (form.id === "reply-form" || form.id === "note-form")) {
      const box = $("#composer-error", form);
      if (box) box.textContent = "";
    }
    if (form && form.id === "template-send") {
      const box = $("#template-error");
      if (box) box.textContent = "";
    }
  });

  /* The server says the message was queued: empty the composer (and only then). */
  document.addEventListener("parley:sent", (event) => {
    const form = event.target.closest ? event.target.closest("form") : null;
    if (!form) return;
    if (form.id === "template-send") {
      form.reset();
      const fields = $("#template-form");
      if (fields) fields.innerHTML = "";
    } else {
      const input = $("#composer-input", form);
      if (input) { input.value = ""; autoGrow(input); }
      clearReply();
      clearAttachment();
      try { sessionStorage.removeItem(draftKey()); } catch (e) { /* see saveDraft */ }
      if (input) input.focus();
    }
    setTimeout(toBottom, 0);
  });

  /* A canned response or label was added: empty its form for the next one. */
  document.addEventListener("parley:saved", (event) => {
    const form = event.target.closest ? event.target.closest("form") : null;
    if (form) {
      form.reset();
      const first = $("input[type=text], textarea", form);
      if (first) first.focus();
    }
  });

  /* ---------------------------------------------------------------- canned responses */

  let cannedRequest = 0;
  function cannedToken(input) {
    const before = input.value.slice(0, input.selectionStart);
    const match = before.match(/(^|\s)\/([\w-]*)$/);
    return match ? { prefix: match[2], start: before.length - match[2].length - 1 } : null;
  }
  function suggestCanned(input) {
    const menu = $("#canned-menu");
    if (!menu || !input.dataset.suggestUrl) return;
    const token = cannedToken(input);
    if (!token) { menu.hidden = true; return; }
    const ticket = ++cannedRequest;
    fetch(`${input.dataset.suggestUrl}?suggest=${encodeURIComponent(token.prefix)}`, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : ""))
      .then((html) => {
        if (ticket !== cannedRequest) return;
        menu.innerHTML = html;
        menu.hidden = !html.trim();
      });
  }
  function pickCanned(option) {
    const input = $("#composer-input");
    const token = cannedToken(input);
    const content = option.dataset.content;
    if (token) {
      input.setRangeText(content, token.start, input.selectionStart, "end");
    } else {
      insertAtCaret(input, content);
    }
    $("#canned-menu").hidden = true;
    input.focus();
    autoGrow(input);
    saveDraft();
  }
  function moveCanned(step) {
    const options = $$("#canned-menu .canned-opt");
    if (!options.length) return;
    let index = options.findIndex((o) => o.classList.contains("is-active"));
    index = (index + step + options.length) % options.length;
    options.forEach((o, i) => o.classList.toggle("is-active", i === index));
    options[index].scrollIntoView({ block: "nearest" });
  }

  /* ---------------------------------------------------------------- keyboard */

  function conversationRows() { return $$("#conv-list > .conv-row"); }
  function moveConversation(step) {
    const rows = conversationRows();
    if (!rows.length) return;
    let index = rows.findIndex((row) => row.classList.contains("is-active"));
    index = index === -1 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
    const link = $(".conv-link", rows[index]);
    rows[index].scrollIntoView({ block: "nearest" });
    if (link && !rows[index].classList.contains("is-active")) link.click();
  }
  function focusComposer() {
    const visible = ["#composer-input", "#template-select"].map((selector) => $(selector))
      .find((el) => el && el.offsetParent !== null);
    if (visible) { visible.focus(); return; }
    const tab = $('[data-composer-tab="note"]');  // messaging is blocked: the note is what is left
    if (tab) tab.click();
  }
  function openShortcuts() { const o = $("#shortcuts"); if (o) o.hidden = false; }
  function closeShortcuts() { const o = $("#shortcuts"); if (o) o.hidden = true; }
  function togglePanel() {
    const inbox = $("#inbox");
    const shown = getComputedStyle($("#contact-panel") || document.body).display !== "none";
    inbox.classList.toggle("panel-open", !shown);
    inbox.classList.toggle("panel-closed", shown);
  }
  function closeEverything() {
    let closed = false;
    $$("details.menu-pop[open]").forEach((d) => { d.open = false; closed = true; });
    ["#emoji-popover", "#canned-menu", "#shortcuts"].forEach((selector) => {
      const el = $(selector);
      if (el && !el.hidden) { el.hidden = true; closed = true; }
    });
    return closed;
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.id === "composer-input") {
      const menu = $("#canned-menu");
      const menuOpen = menu && !menu.hidden && $(".canned-opt", menu);
      if (menuOpen && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
        event.preventDefault();
        moveCanned(event.key === "ArrowDown" ? 1 : -1);
        return;
      }
      if (menuOpen && (event.key === "Enter" || event.key === "Tab")) {
        event.preventDefault();
        pickCanned($(".canned-opt.is-active", menu) || $(".canned-opt", menu));
        return;
      }
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        const form = target.form;
        if (form) form.requestSubmit();
        return;
      }
    }
    if (event.key === "Escape") {
      if (!closeEverything() && isTyping(target)) target.blur();
      return;
    }
    if (isTyping(target) || event.metaKey || event.ctrlKey || event.altKey) return;
    if (!$("#inbox")) return;
    switch (event.key) {
      case "j": event.preventDefault(); moveConversation(1); break;
      case "k": event.preventDefault(); moveConversation(-1); break;
      case "c": case "/": event.preventDefault(); focusComposer(); break;
      case "e": {
        const resolve = $("[data-resolve]");
        if (resolve) { event.preventDefault(); resolve.click(); }
        break;
      }
      case "?": event.preventDefault(); openShortcuts(); break;
      default: break;
    }
  });

  /* ---------------------------------------------------------------- start */

  function start() {
    watchStage("msg-stage", drainMessages);
    watchStage("conv-stage", drainConversations);
    if (currentThreadId()) threadLoaded();
    updateWindows();
    const s = scroller();
    if (s) {
      s.addEventListener("scroll", () => {
        if (atBottom()) { const jump = $("#jump-latest"); if (jump) jump.hidden = true; }
      }, { passive: true });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("htmx:afterSwap", (event) => {
    // A new thread brings its own scroller.
    if (event.detail.target && event.detail.target.id === "thread-pane") {
      const s = scroller();
      if (s) s.addEventListener("scroll", () => {
        if (atBottom()) { const jump = $("#jump-latest"); if (jump) jump.hidden = true; }
      }, { passive: true });
    }
  });
})();
