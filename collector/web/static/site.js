// Site page: 7-day profile chart, and live power per meter over Server-Sent Events.
"use strict";
(function () {
  const table = document.getElementById("meters");
  const site = table.dataset.site;
  const tz = table.dataset.tz;
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), tz);
  const totalEl = document.getElementById("live-total");
  const stateEl = document.getElementById("live-state");
  const atEl = document.getElementById("live-at");
  const latest = new Map();  // "gateway/meter" -> [ts_ms, W]
  // sub-meters sit behind a main meter that already counts them
  const subMeters = new Set(Array.from(table.querySelectorAll("tr[data-sub-meter]"), (row) => row.dataset.meterKey));
  const live = { t: [], kw: [] };
  const LIVE_WINDOW_S = 600;
  window.sparwattLive = { events: 0, lastLatencyMs: null };

  function fmt(w, digits) { return (w / 1000).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }); }
  function clock(ms) { return new Date(ms).toLocaleTimeString("en-GB", { timeZone: tz }); }

  function width(el) { return Math.max(300, el.clientWidth - 10); }

  const profileData = JSON.parse(document.getElementById("profile-data").textContent);
  const profileEl = document.getElementById("profile-chart");
  if (profileData.t.length) {
    new uPlot({ width: width(profileEl), height: 260, tzDate, series: [{}, { label: "kW", stroke: "#1f6feb", width: 1, spanGaps: false }],
      scales: { x: { time: true, range: () => [profileData.from, profileData.to] } }, axes: [{}, { label: "kW" }] },
      [profileData.t, profileData.kw], profileEl);
  } else {
    profileEl.textContent = "No 15-minute data yet.";
  }

  const liveEl = document.getElementById("live-chart");
  const liveChart = new uPlot({ width: width(liveEl), height: 160, tzDate, series: [{}, { label: "total kW", stroke: "#1a7f37", width: 1.5 }],
    scales: { x: { time: true, range: (u, min, max) => [max - LIVE_WINDOW_S, max] } },
    axes: [{ space: 90, values: (u, splits) => splits.map((t) => clock(t * 1000)) }, { label: "kW" }] }, [[], []], liveEl);

  function apply(data) {
    for (const [key, pair] of Object.entries(data.values)) {
      const old = latest.get(key);
      if (!old || old[0] <= pair[0]) latest.set(key, pair);
      const row = table.querySelector(`tr[data-meter-key="${CSS.escape(key)}"]`);
      if (row) {
        const cell = row.querySelector('[data-field="power"]');
        cell.textContent = fmt(pair[1], 2);
        cell.dataset.w = pair[1];
        row.querySelector('[data-field="at"]').textContent = clock(pair[0]);
      }
    }
    let total = 0;
    for (const [key, pair] of latest) if (!subMeters.has(key)) total += pair[1];
    if (latest.size) {
      totalEl.textContent = fmt(total, 1);
      totalEl.dataset.w = total;
      if (data.ts_ms) {
        atEl.textContent = clock(data.ts_ms);
        live.t.push(data.ts_ms / 1000);
        live.kw.push(total / 1000);
        while (live.t.length && live.t[0] < live.t[live.t.length - 1] - LIVE_WINDOW_S) { live.t.shift(); live.kw.shift(); }
        liveChart.setData([live.t, live.kw]);
      }
    }
  }

  const source = new EventSource(`/api/sites/${encodeURIComponent(site)}/live`);
  source.addEventListener("open", () => { stateEl.textContent = "live"; stateEl.className = "state online"; });
  source.addEventListener("error", () => { stateEl.textContent = "reconnecting"; stateEl.className = "state offline"; });
  source.addEventListener("snapshot", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("power", (e) => {
    const data = JSON.parse(e.data);
    apply(data);
    window.sparwattLive.events += 1;
    if (data.ts_ms) window.sparwattLive.lastLatencyMs = Date.now() - data.ts_ms;
  });
})();
