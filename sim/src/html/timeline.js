// keel-sim run timeline: swimlanes drawn as SVG from the run's JSON (embedded above).
// No network, no libraries. After the first layout it records data-rendered="ok" and the
// violation marker's box on <body> so a headless browser can check the picture.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var LABEL_W = 84, LANE_H = 46, TOP = 28, RIGHT = 16;
  var laneIndex = {};
  data.lanes.forEach(function (l, i) { laneIndex[l] = i; });
  var end = Math.max(data.end_us, 1);
  var view = { t0: 0, t1: end };
  // `#view=A,B` (seconds) opens the page zoomed on that window (for links and screenshots).
  var m = /view=([0-9.]+),([0-9.]+)/.exec(location.hash);
  if (m && +m[1] * 1e6 < Math.min(+m[2] * 1e6, end)) { view.t0 = +m[1] * 1e6; view.t1 = Math.min(+m[2] * 1e6, end); }

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, attrs, text, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function secs(us) { return (us / 1e6).toFixed(us < 1e7 ? 3 : 2) + "s"; }

  // Page skeleton.
  var header = html("header", {}, undefined, document.body);
  var h1 = html("h1", {}, undefined, header);
  html("span", {}, data.scenario + " · seed " + data.seed + " · mutant " + data.mutant + " · ", h1);
  var failed = data.violations.length > 0;
  html("span", { "class": failed ? "verdict-fail" : "verdict-pass" },
    failed ? "FAIL: " + data.violations.map(function (v) { return v.invariant; }).join(", ") : "pass", h1);
  var controls = html("div", { id: "controls" }, undefined, header);
  var bIn = html("button", { id: "zoom-in", title: "zoom in" }, "+", controls);
  var bOut = html("button", { id: "zoom-out", title: "zoom out" }, "−", controls);
  var bFit = html("button", { id: "zoom-fit", title: "whole run" }, "fit", controls);
  var bViol = failed ? html("button", { id: "zoom-violation" }, "zoom to violation", controls) : null;
  var range = html("span", { "class": "hint" }, "", controls);
  html("span", { "class": "hint" }, "wheel: zoom · drag: pan · hover: event fields", controls);
  var legend = html("div", { id: "legend" }, undefined, header);
  [["fault", "planned fault window"], ["down", "node down"], ["paused", "node frozen"],
   ["belief", "node believes it holds the lease"], ["grant", "store grant"]].forEach(function (p) {
    html("span", { "class": "sw " + p[0] }, "", legend);
    html("span", {}, p[1], legend);
  });
  if (data.events.length < data.events_total) {
    html("div", {}, "showing the first " + data.events.length + " of " + data.events_total + " events", legend);
  }
  var svg = el("svg", { id: "chart" }, document.body);
  var tip = html("div", { id: "tip" }, undefined, document.body);
  var details = html("div", { id: "details" }, undefined, document.body);
  data.violations.forEach(function (v) { html("div", { "class": "verdict-fail" }, "VIOLATION " + v.line, details); });
  html("pre", {}, data.plan + "\n" + data.replay, details);

  function width() { return Math.max(document.documentElement.clientWidth, 400); }
  function x(t, w) { return LABEL_W + (t - view.t0) / (view.t1 - view.t0) * (w - LABEL_W - RIGHT); }
  function laneY(name) { return TOP + (laneIndex[name] === undefined ? data.lanes.length - 1 : laneIndex[name]) * LANE_H; }

  function render() {
    var w = width();
    var h = TOP + data.lanes.length * LANE_H + 26;
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    range.textContent = "view " + secs(view.t0) + " – " + secs(view.t1) + " of " + secs(end);
    el("clipPath", { id: "plot" }, el("defs", {}, svg)).appendChild(
      el("rect", { x: LABEL_W, y: 0, width: w - LABEL_W - RIGHT, height: h }));
    data.lanes.forEach(function (l) {
      var y = laneY(l);
      el("rect", { "class": "lane-bg", x: 0, y: y, width: w - RIGHT, height: LANE_H - 4 }, svg);
      el("text", { "class": "lane-label", x: 8, y: y + LANE_H / 2 + 2 }, svg).textContent = l;
    });
    // Time axis.
    var axis = el("g", { "class": "axis" }, svg);
    var span = view.t1 - view.t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    if (span / step > 16) step *= 5; else if (span / step > 8) step *= 2;
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      var xt = x(t, w);
      el("line", { x1: xt, x2: xt, y1: TOP - 6, y2: h - 6 }, axis);
      el("text", { x: xt + 2, y: TOP - 10 }, axis).textContent = secs(t);
    }
    var plot = el("g", { "clip-path": "url(#plot)" }, svg);
    // Spans: faults shade the whole lane; lives, beliefs and grants are bars inside it.
    var band = { fault: [0, LANE_H - 4], down: [3, 8], paused: [3, 8], belief: [13, 10], grant: [25, 5] };
    data.spans.forEach(function (s, i) {
      if (s.end < view.t0 || s.start > view.t1) return;
      var b = band[s.cls] || [0, 4];
      var x0 = x(Math.max(s.start, view.t0), w), x1 = x(Math.min(s.end, view.t1), w);
      el("rect", { "class": s.cls, x: x0, y: laneY(s.lane) + b[0], width: Math.max(x1 - x0, 2), height: b[1],
        "data-span": i }, plot);
    });
    // Events: at most one tick per pixel column and lane (a bad outcome wins the column).
    var cols = {};
    data.events.forEach(function (e, i) {
      if (e.t < view.t0 || e.t > view.t1) return;
      var key = e.lane + ":" + Math.round(x(e.t, w));
      var prev = cols[key];
      if (prev === undefined || (e.tone === "bad" && data.events[prev].tone !== "bad")) cols[key] = i;
    });
    Object.keys(cols).forEach(function (k) {
      var i = cols[k], e = data.events[i], xe = x(e.t, w), y = laneY(e.lane);
      el("line", { "class": "ev " + e.tone, x1: xe, x2: xe, y1: y + 31, y2: y + LANE_H - 6, "data-ev": i }, plot);
    });
    if (data.heal_us >= view.t0 && data.heal_us <= view.t1) {
      var xh = x(data.heal_us, w);
      el("line", { "class": "heal", x1: xh, x2: xh, y1: TOP - 4, y2: h - 4, "data-heal": 1 }, plot);
    }
    // Violations: a marker across every lane; the first one is #violation. Labels alternate
    // between the top and the bottom so two close instants stay readable.
    data.violations.forEach(function (v, i) {
      var t = Math.min(Math.max(v.t, view.t0), view.t1);
      var xv = x(t, w);
      var g = el("g", { "class": "violation", "data-violation": i }, svg);
      if (i === 0) g.setAttribute("id", "violation");
      el("line", { x1: xv, x2: xv, y1: TOP - 4, y2: h - 20 }, g);
      var label = v.invariant, ly = i % 2 === 0 ? 2 : h - 19;
      el("rect", { x: xv - 2, y: ly, width: 10 + 8 * label.length, height: 16, rx: 3 }, g);
      el("text", { x: xv + 3, y: ly + 12 }, g).textContent = label;
    });
  }

  function zoom(factor, at) {
    var span = view.t1 - view.t0;
    var nspan = Math.min(Math.max(span * factor, 200), end);
    var c = at === undefined ? (view.t0 + view.t1) / 2 : at;
    var frac = (c - view.t0) / span;
    var t0 = c - frac * nspan;
    t0 = Math.min(Math.max(t0, 0), end - nspan);
    view.t0 = t0; view.t1 = t0 + nspan;
    render();
  }
  function tAt(clientX) {
    var r = svg.getBoundingClientRect(), w = width();
    return view.t0 + (clientX - r.left - LABEL_W) / (w - LABEL_W - RIGHT) * (view.t1 - view.t0);
  }
  bIn.onclick = function () { zoom(0.5); };
  bOut.onclick = function () { zoom(2); };
  bFit.onclick = function () { view.t0 = 0; view.t1 = end; render(); };
  if (bViol) bViol.onclick = function () {
    var t = data.violations[0].t, half = Math.max(end / 40, 1000);
    view.t0 = Math.max(0, t - half); view.t1 = Math.min(end, t + half); render();
  };
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    zoom(ev.deltaY > 0 ? 1.25 : 0.8, tAt(ev.clientX));
  }, { passive: false });
  var drag = null;
  svg.addEventListener("mousedown", function (ev) { drag = { x: ev.clientX, t0: view.t0, t1: view.t1 }; });
  window.addEventListener("mouseup", function () { drag = null; });
  window.addEventListener("mousemove", function (ev) {
    if (drag) {
      var dt = (drag.x - ev.clientX) / (width() - LABEL_W - RIGHT) * (drag.t1 - drag.t0);
      dt = Math.min(Math.max(dt, -drag.t0), end - drag.t1);
      view.t0 = drag.t0 + dt; view.t1 = drag.t1 + dt;
      render();
    }
  });
  svg.addEventListener("mouseover", function (ev) {
    var d = ev.target.dataset || {}, text = null;
    if (d.ev !== undefined) { var e = data.events[+d.ev]; text = e.line + "\n\n" + e.debug; }
    else if (d.span !== undefined) { var s = data.spans[+d.span]; text = s.label + "\n" + secs(s.start) + " – " + secs(s.end); }
    else if (d.heal !== undefined) { text = "heal: every fault ended at " + secs(data.heal_us); }
    else if (ev.target.parentNode && ev.target.parentNode.dataset && ev.target.parentNode.dataset.violation !== undefined) {
      text = "VIOLATION " + data.violations[+ev.target.parentNode.dataset.violation].line;
    }
    if (text === null) { tip.style.display = "none"; return; }
    tip.textContent = text;
    tip.style.display = "block";
    tip.style.left = Math.min(ev.clientX + 12, width() - 500) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  });
  svg.addEventListener("mouseout", function () { tip.style.display = "none"; });
  window.addEventListener("resize", render);

  render();
  // Evidence for a headless check: rendered, and where the violation marker landed.
  var marker = document.getElementById("violation");
  if (marker) {
    var r = marker.getBoundingClientRect();
    document.body.setAttribute("data-violation-box",
      [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)].join(","));
  } else {
    document.body.setAttribute("data-violation-box", "none");
  }
  document.body.setAttribute("data-rendered", "ok");
})();
