// appauth settings page: a little progressive enhancement. The page works
// without it; with it, times show in local form and the new password can be
// copied with one click.
"use strict";

(function () {
  function relative(date) {
    var secs = Math.round((Date.now() - date.getTime()) / 1000);
    if (secs < 60) return "just now";
    var units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(secs / units[i][1]);
      if (n >= 1) return n + " " + units[i][0] + (n === 1 ? "" : "s") + " ago";
    }
    return "just now";
  }

  function localTimes() {
    var els = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      var local = d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      el.title = local;
      el.textContent = el.hasAttribute("data-relative") ? relative(d) : local;
    }
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Fallback for plain-HTTP test servers: a temporary selection.
    return new Promise(function (resolve, reject) {
      var ta = document.createElement("textarea");
      ta.value = text;
      ta.setAttribute("readonly", "");
      ta.className = "sr-only";
      document.body.appendChild(ta);
      ta.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(ta);
      if (ok) { resolve(); } else { reject(new Error("copy failed")); }
    });
  }

  function setupCopy() {
    var buttons = document.querySelectorAll("button[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        var btn = ev.currentTarget;
        var src = document.getElementById(btn.getAttribute("data-copy"));
        var status = btn.parentNode.querySelector(".copied");
        if (!src) return;
        copyText(src.textContent.trim()).then(function () {
          if (status) status.textContent = "Copied";
        }, function () {
          // Select it so the person can copy by hand.
          var range = document.createRange();
          range.selectNodeContents(src);
          var sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          if (status) status.textContent = "Press Ctrl+C (or long-press) to copy";
        });
      });
    }
  }

  // The shown-once box takes the focus, so keyboard and screen-reader
  // users land on it (the region is named by its heading and described by
  // its "shown only once" line), and a live region announces it.
  function focusResult() {
    var box = document.getElementById("created");
    if (!box) return;
    box.focus();
    box.scrollIntoView({ block: "center" });
    var say = document.getElementById("created-announce");
    if (say) say.textContent = say.getAttribute("data-announce");
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes();
    setupCopy();
    focusResult();
  });
})();
