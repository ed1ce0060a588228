// Live parts of the pages, in plain JavaScript: an element marked `data-live` follows an event
// stream (`data-events`) and, on every event, fetches its HTML again (`data-fragment`) from the
// server, which renders and escapes it. EventSource reconnects by itself (with Last-Event-ID);
// when the server refuses or the stream closes for good, this reconnects with a growing delay.
// `data-poll` (ms) also refreshes on a timer, for figures that change without an event (with an
// empty `data-events`, the timer alone).
(function () {
  "use strict";
  var TYPES = ["quote", "customer_identified", "customer_unknown", "token_invalid",
    "customer_cleared", "print_result", "device_fault", "device_restored"];

  function follow(root) {
    var busy = false, again = false, retry = 1000, source = null;
    var body = document.body;

    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch(root.dataset.fragment, {
        headers: { "X-Pages-Fetch": "1" }, cache: "no-store", credentials: "same-origin"
      }).then(function (reply) {
        if (reply.status === 401) {
          location.href = "/login?next=" + encodeURIComponent(location.pathname);
          return null;
        }
        return reply.ok ? reply.text() : null;
      }).then(function (html) {
        if (html !== null && html !== undefined) {
          root.innerHTML = html;
          root.dataset.refreshes = String(Number(root.dataset.refreshes || 0) + 1);
        }
      }).catch(function () {
        body.classList.add("offline");
      }).then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
    }

    function connect() {
      source = new EventSource(root.dataset.events);
      source.onopen = function () {
        retry = 1000;
        body.classList.remove("offline");
        body.dataset.stream = "open";
        refresh();  // whatever happened while we were away
      };
      source.onmessage = refresh;
      TYPES.forEach(function (type) { source.addEventListener(type, refresh); });
      source.onerror = function () {
        body.classList.add("offline");
        body.dataset.stream = "reconnecting";
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(connect, retry);
          retry = Math.min(retry * 2, 15000);
        }
      };
    }

    if (root.dataset.events) { connect(); }  // without a stream, the timer alone (head office's fleet)
    var poll = Number(root.dataset.poll || 0);
    if (poll > 0) { setInterval(refresh, poll); }
  }

  document.querySelectorAll("[data-live]").forEach(follow);
})();
