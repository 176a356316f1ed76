// Live status: rows marked data-live="<api url>" are refreshed from the JSON API every 3 s.
// The pages work without this script; it only saves a reload.
(function () {
  function refresh() {
    document.querySelectorAll("[data-live]").forEach(function (row) {
      fetch(row.dataset.live, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (app) {
          if (!app || !app.deployment) { return; }
          var r = app.deployment.replicas;
          var cell = row.querySelector("[data-ready]");
          if (cell) {
            cell.textContent = r.ready + "/" + r.desired;
            cell.className = r.ready === r.desired ? "status-ok" : "status-wait";
          }
        })
        .catch(function () {});
    });
  }
  setInterval(refresh, 3000);
})();

// Logs: "Follow" streams new lines from the API into the page (fetch and a ReadableStream; a
// GET, so no CSRF token). Without this script the page still shows the recent lines.
(function () {
  var KEEP = 512 * 1024; // characters kept on the page; older lines are dropped

  document.querySelectorAll("[data-logs]").forEach(function (card) {
    var button = card.querySelector("[data-follow]");
    var out = card.querySelector("[data-logs-text]");
    var status = card.querySelector("[data-follow-status]");
    if (!button || !out || !window.ReadableStream || !window.TextDecoder || !window.AbortController) {
      return;
    }
    button.hidden = false;
    var following = null;

    function stop(message) {
      if (following) { following.abort(); following = null; }
      button.textContent = "Follow";
      button.setAttribute("aria-pressed", "false");
      status.textContent = message || "";
    }

    function append(text) {
      var atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
      var all = out.textContent + text;
      if (all.length > KEEP) { all = all.slice(all.indexOf("\n", all.length - KEEP) + 1); }
      out.textContent = all;
      if (atBottom) { out.scrollTop = out.scrollHeight; }
    }

    function failure(response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        throw new Error(body && body.message ? body.message : "HTTP " + response.status);
      });
    }

    button.addEventListener("click", function () {
      if (following) { stop("Stopped."); return; }
      var mine = new AbortController();
      following = mine;
      button.textContent = "Stop";
      button.setAttribute("aria-pressed", "true");
      status.textContent = "Following…";
      var url = card.dataset.logs + "?follow=true&tail=" + encodeURIComponent(card.dataset.tail || "100");
      fetch(url, { credentials: "same-origin", signal: mine.signal, headers: { Accept: "text/plain" } })
        .then(function (response) {
          if (!response.ok) { return failure(response); }
          out.textContent = "";
          var note = card.querySelector("[data-logs-note]");
          if (note) { note.hidden = true; }
          var reader = response.body.getReader();
          var decoder = new TextDecoder();
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) {
                if (following === mine) { following = null; stop("The stream ended (the pods stopped, or the server's time limit)."); }
                return;
              }
              append(decoder.decode(chunk.value, { stream: true }));
              return pump();
            });
          }
          return pump();
        })
        .catch(function (error) {
          if (following === mine) { following = null; stop("Could not follow: " + error.message); }
        });
    });
  });
})();
