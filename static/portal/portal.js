/* Small behaviours of the portal, all optional: every page works without JavaScript.
 * No inline script anywhere (Content-Security-Policy), so they live here.
 */
(function () {
  "use strict";

  // A log viewer shows the newest lines at the bottom, as a terminal does: keep them in view.
  function scrollLogs(root) {
    var boxes = (root || document).querySelectorAll(".log-lines");
    Array.prototype.forEach.call(boxes, function (box) { box.scrollTop = box.scrollHeight; });
  }

  document.addEventListener("DOMContentLoaded", function () { scrollLogs(document); });
  // htmx:load is fired on each new element an htmx swap puts in the page (new log lines of a tail).
  document.addEventListener("htmx:load", function (event) {
    if (event.target && event.target.id === "log-lines") scrollLogs(event.target);
  });
})();
