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
