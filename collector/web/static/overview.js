// Overview: refresh each site's figures every 10 s from the API (same login cookie).
"use strict";
(function () {
  const table = document.getElementById("sites");
  if (!table) return;
  function num(v, digits, scale) {
    return v === null || v === undefined ? "-" : (v / scale).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  async function refresh() {
    try {
      const response = await fetch("/api/sites", { credentials: "same-origin" });
      if (!response.ok) return;
      for (const s of await response.json()) {
        const row = table.querySelector(`tr[data-site="${CSS.escape(s.site)}"]`);
        if (!row) continue;
        row.querySelector('[data-field="power"]').textContent = num(s.power_w, 1, 1000);
        row.querySelector('[data-field="today"]').textContent = num(s.today_kwh, 1, 1);
      }
    } catch (err) { /* next round */ }
  }
  setInterval(refresh, 10000);
})();
