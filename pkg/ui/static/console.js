// Live updates for the sred console (progressive enhancement: every page
// works without this script). An element with data-live="prefix ..." is
// refreshed in place when an event whose type starts with one of the
// prefixes arrives on the event stream (GET /api/v1/events); with
// data-incident, only events of that incident count.
//
// The stream is read with fetch, not EventSource: EventSource hands a
// named event (event: chaos.finished) only to a listener of that exact
// name, so every type not listed in advance was lost. When the stream
// ends the page says so and reconnects; the stream does not replay, so a
// reconnect refreshes the page for what it missed meanwhile.
(function () {
  "use strict";
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch || !window.DOMParser || !window.TextDecoder || !window.ReadableStream) return;
  var prefixes = live.getAttribute("data-live").split(/\s+/).filter(Boolean);
  var incident = live.getAttribute("data-incident");
  var status = document.getElementById("live");
  var pending = false, again = false;

  function refresh() {
    if (pending) { again = true; return; }
    pending = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("[data-live]");
        var current = document.querySelector("[data-live]");
        if (fresh && current) {
          // Keep what the user is typing.
          var active = document.activeElement;
          if (active && current.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA")) { return; }
          current.replaceWith(fresh);
          document.body.setAttribute("data-refreshed", String(Date.now()));
          if (status) status.textContent = "Updated " + utcTime(new Date());
        }
      })
      .catch(function () {})
      .then(function () { pending = false; if (again) { again = false; refresh(); } });
  }

  // utcTime is the time of day in UTC, as the server writes times
  // ("09:41:07 UTC"): the browser's zone would read as another time.
  function utcTime(d) { return d.toISOString().slice(11, 19) + " UTC"; }

  // Numbers as the server renders them (pct, rate in ui.go).
  function trim(s) { return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s; }
  function pct(v) { return (typeof v !== "number" || !isFinite(v)) ? "\u2013" : trim((v * 100).toFixed(2)) + "%"; }
  // remaining says the budget left as the server renders it: the
  // percentage, the server's "< -100% (N x the budget spent)" text below
  // -100%, and the data's coverage while it does not cover the period.
  function remaining(d) {
    var v = d.remaining_ratio, s = pct(v);
    if (typeof v === "number" && v < -1 && typeof d.remaining_text === "string") s = d.remaining_text;
    if (typeof v === "number" && d.covered) s += " over " + d.covered;
    return s;
  }
  function rate(v) { return (typeof v !== "number" || !isFinite(v)) ? "\u2013" : trim(v.toFixed(2)) + "\u00d7"; }

  // budget.updated carries the live values of one SLO (group): the rows
  // that show it get their numbers in place, without fetching the page.
  // A state change also arrives as budget.state_changed, which refreshes.
  function updateValues(ev) {
    var d = ev.data || {}, key = (ev.service || "") + "/" + (d.slo || ""), group = d.group || "";
    var rows = document.querySelectorAll("tr[data-slo]"), n = 0;
    for (var i = 0; i < rows.length; i++) {
      var tr = rows[i];
      if (tr.getAttribute("data-slo") !== key || (tr.getAttribute("data-group") || "") !== group) continue;
      var a = tr.querySelector(".achieved"), r = tr.querySelector(".remaining");
      if (a) a.textContent = pct(d.sli_achieved);
      if (r) r.textContent = remaining(d);
      var rates = d.burn_rates || {};
      tr.querySelectorAll(".rate[data-window]").forEach(function (el) {
        var w = el.getAttribute("data-window");
        if (w in rates) el.textContent = w + " " + rate(rates[w]);
      });
      n++;
    }
    if (n) document.body.setAttribute("data-values-updated", String(Date.now()));
  }

  function onEvent(data) {
    var ev;
    try { ev = JSON.parse(data); } catch (x) { return; }
    if (incident && ev.incident_id !== incident) return;
    if (ev.type === "budget.updated") { updateValues(ev); return; }
    for (var i = 0; i < prefixes.length; i++) {
      if ((ev.type || "").indexOf(prefixes[i]) === 0) { refresh(); return; }
    }
  }

  // onBlock handles one Server-Sent Events message: its data line is the
  // event as JSON (one line: JSON never holds a raw newline).
  function onBlock(block) {
    var lines = block.split(/\r?\n/);
    for (var i = 0; i < lines.length; i++) {
      if (lines[i].indexOf("data:") === 0) onEvent(lines[i].slice(5).replace(/^ /, ""));
    }
  }

  var connectedOnce = false;
  function opened() {
    document.body.setAttribute("data-live-connected", "true");
    if (status) status.textContent = "Live";
    // Events published while disconnected are not replayed.
    if (connectedOnce) refresh();
    connectedOnce = true;
  }
  function lost() {
    document.body.setAttribute("data-live-connected", "false");
    if (status) status.textContent = "Disconnected at " + utcTime(new Date()) + ": reconnecting\u2026";
  }

  function read(reader) {
    var decoder = new TextDecoder(), buf = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buf += decoder.decode(chunk.value, { stream: true });
        var m;
        while ((m = /\r?\n\r?\n/.exec(buf))) {
          onBlock(buf.slice(0, m.index));
          buf = buf.slice(m.index + m[0].length);
        }
        return pump();
      });
    }
    return pump();
  }

  function connect() {
    fetch("/api/v1/events", { headers: { "Accept": "text/event-stream" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok || !r.body) return Promise.reject(r.status);
        opened();
        return read(r.body.getReader());
      })
      .catch(function () {})
      .then(function () { lost(); setTimeout(connect, 3000); });
  }
  connect();

  // The home page's search filters the SLO rows as one types.
  var search = document.getElementById("slo-search");
  if (search) {
    search.addEventListener("input", function () {
      var q = search.value.toLowerCase();
      document.querySelectorAll("details.service").forEach(function (d) {
        var any = false;
        d.querySelectorAll("tr.slo").forEach(function (tr) {
          var hit = !q || tr.getAttribute("data-slo").toLowerCase().indexOf(q) >= 0;
          tr.hidden = !hit; any = any || hit;
        });
        d.hidden = !any;
        if (q && any) d.open = true;
      });
    });
  }
})();
