// Fleet page: "Read now" asks the gateway to read one meter at once and shows the answer inline.
"use strict";
(function () {
  const fmt = (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 3 });
  const KEY = ["power_w", "energy_import_kwh", "energy_export_kwh", "voltage_l1_v"];

  function show(out, text, failed) {
    out.textContent = text;
    out.title = "";
    out.classList.toggle("error", failed);
  }

  async function readNow(button) {
    const out = button.parentElement.querySelector("output.read-result");
    button.disabled = true;
    show(out, "reading...", false);
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      let body = null;
      try { body = await response.json(); } catch (err) { body = null; }
      if (response.status === 404 || response.status === 405) {
        // an older collector, or a meter it does not know: nothing to read through it
        show(out, "not available: " + ((body && body.detail) || response.status), true);
      } else if (!response.ok) {
        show(out, (body && (body.detail || body.error)) || `failed (HTTP ${response.status})`, true);
      } else if (!body || !body.ok) {
        show(out, (body && body.error) || "the meter did not answer", true);
      } else {
        const units = body.unit || {};
        const values = body.values || {};
        const label = (name) => `${name} ${fmt(values[name])}${units[name] ? " " + units[name] : ""}`;
        // a meter may answer with dozens of quantities: the key ones inline, all on hover
        const names = Object.keys(values);
        const first = KEY.filter((n) => n in values);
        const shown = (first.length ? first : names.slice(0, KEY.length)).map(label);
        const more = names.length - shown.length;
        const took = body.latency_ms == null ? "" : ` (${fmt(body.latency_ms)} ms)`;
        show(out, (shown.join(", ") || "no values") + (more > 0 ? `, +${more} more` : "") + took, false);
        out.title = names.map(label).join("\n");
      }
    } catch (err) {
      show(out, "no answer from the collector", true);
    } finally {
      button.disabled = false;
    }
  }

  for (const button of document.querySelectorAll("button.read-now")) {
    button.addEventListener("click", () => readNow(button));
  }
  window.sparwattFleet = { ready: true };
})();
