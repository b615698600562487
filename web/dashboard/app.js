/* souk analytics dashboard: plain JS, no build step, no CDN.
 *
 * Every call goes to the page's own origin: souk-analytics serves the page
 * (at / and /analytics/dashboard/) and its /analytics/* API, and the gateway
 * passes /analytics/* through, so the same files work both ways.  Signing in
 * is POST /analytics/login (passed to souk-auth); the token lives in
 * sessionStorage only, and a 401 asks for a login again.
 */
"use strict";

(function () {
  const TOKEN_KEY = "souk.analytics.token";
  const REFRESH_MS = 5000;
  const COLORS = { confirmed: "#1f9d55", failed: "#d64545", expired: "#e3a008", cancelled: "#7c5cd6", created: "#2f6fde" };
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let query = "";

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token() } });
    if (r.status === 401 || r.status === 403) {
      signOut(r.status === 403 ? "this account is not an administrator" : "");
      throw new Error("signed out");
    }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function showLogin(message) {
    $("dash").hidden = true;
    $("logout").hidden = true;
    $("login-panel").hidden = false;
    $("login-error").textContent = message || "";
    $("status").textContent = "signed out";
    document.body.dataset.ready = "0";
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (timer) clearInterval(timer);
    timer = null;
    showLogin(message);
  }

  async function login(ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const r = await fetch("/analytics/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: $("login-email").value, password: $("login-password").value }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok || !body.accessToken) {
        $("login-error").textContent = body.detail || body.title || "sign-in failed";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, body.accessToken);
      start();
    } catch (e) {
      $("login-error").textContent = "cannot reach the server";
    }
  }

  function start() {
    $("login-panel").hidden = true;
    $("dash").hidden = false;
    $("logout").hidden = false;
    $("status").textContent = "signed in";
    refresh();
    if (!timer) timer = setInterval(refresh, REFRESH_MS);
  }

  /* ---- charts ---------------------------------------------------------------- */

  function drawBookings(series) {
    const cv = $("chart-bookings");
    const ratio = window.devicePixelRatio || 1;
    const w = cv.clientWidth || 900, h = cv.clientHeight || 220;
    cv.width = w * ratio;
    cv.height = h * ratio;
    const g = cv.getContext("2d");
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, h);
    const keys = ["confirmed", "failed", "expired", "cancelled"];
    const pad = { l: 36, r: 8, t: 8, b: 22 };
    const max = Math.max(1, ...series.map((s) => Math.max(s.created, keys.reduce((a, k) => a + s[k], 0))));
    const n = Math.max(series.length, 1);
    const bw = (w - pad.l - pad.r) / n;
    const y = (v) => h - pad.b - (v / max) * (h - pad.t - pad.b);
    g.strokeStyle = "#e3e6ec";
    g.fillStyle = "#6b7385";
    g.font = "11px system-ui, sans-serif";
    for (let i = 0; i <= 4; i++) {
      const v = Math.round((max * i) / 4);
      g.beginPath(); g.moveTo(pad.l, y(v)); g.lineTo(w - pad.r, y(v)); g.stroke();
      g.fillText(String(v), 4, y(v) + 4);
    }
    let bars = 0;
    series.forEach((s, i) => {
      let acc = 0;
      for (const k of keys) {
        if (!s[k]) continue;
        g.fillStyle = COLORS[k];
        g.fillRect(pad.l + i * bw + 1, y(acc + s[k]), Math.max(bw - 2, 1), y(acc) - y(acc + s[k]));
        acc += s[k];
        bars++;
      }
    });
    g.strokeStyle = COLORS.created;
    g.lineWidth = 2;
    g.beginPath();
    series.forEach((s, i) => {
      const x = pad.l + i * bw + bw / 2;
      if (i) g.lineTo(x, y(s.created)); else g.moveTo(x, y(s.created));
    });
    g.stroke();
    if (series.length) {
      g.fillStyle = "#6b7385";
      g.fillText(series[0].minute.slice(11, 16), pad.l, h - 6);
      g.fillText(series[series.length - 1].minute.slice(11, 16), w - pad.r - 32, h - 6);
    }
    cv.dataset.bars = String(bars);
    const legend = $("legend-bookings");
    legend.replaceChildren(...["created", ...keys].map((k) => el("span", {}, el("i", { style: "background:" + COLORS[k] }), k)));
  }

  function drawFunnel(f) {
    const steps = ["requested", "reserved", "paid", "confirmed"];
    const max = Math.max(1, f.requested);
    $("funnel").replaceChildren(...steps.map((s) => {
      const rate = s === "requested" ? "" : Math.round((f.conversion[s] || 0) * 100) + "%";
      return el("div", { class: "row" }, s,
        el("div", {}, el("div", { class: "bar", style: "width:" + (100 * f[s] / max).toFixed(1) + "%" })),
        f[s] + (rate ? " · " + rate : ""));
    }));
    $("funnel").dataset.requested = String(f.requested);
  }

  function numbers(box, pairs) {
    box.replaceChildren(...pairs.map(([k, v]) => el("div", {}, el("b", {}, v), k)));
  }

  function ms(v) {
    if (v === null || v === undefined) return "–";
    return v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s";
  }

  /* ---- consistency, events, timeline ---------------------------------------- */

  function link(id) {
    return el("a", { onclick: () => showTimeline(id), title: "timeline" }, id);
  }

  function drawConsistency(c) {
    const badge = $("consistency-badge");
    badge.textContent = c.ok ? "OK" : "VIOLATIONS";
    badge.className = "badge " + (c.ok ? "ok" : "bad");
    $("consistency").replaceChildren(...c.checks.map((k) => {
      const li = el("li", { class: k.ok ? "ok" : "bad" }, k.description || k.name,
        k.ok ? "" : " (" + k.violationCount + ")");
      if (!k.ok) {
        li.append(el("ul", {}, ...k.violations.slice(0, 10).map((v) =>
          el("li", {}, v.correlationId ? link(v.correlationId) : "", " ", v.detail))));
      }
      return li;
    }));
  }

  function drawEvents(page) {
    $("events").replaceChildren(...page.content.map((e) => el("tr", {},
      el("td", {}, (e.time || "").replace("T", " ").replace("Z", "")),
      el("td", {}, e.type), el("td", {}, e.source || ""),
      el("td", {}, e.correlationId ? link(e.correlationId) : ""))));
    $("events-total").textContent = page.totalElements + " events" + (query ? " match “" + query + "”" : "");
    $("events").dataset.rows = String(page.content.length);
  }

  async function showTimeline(id) {
    try {
      const t = await api("/analytics/timeline/" + encodeURIComponent(id));
      $("timeline-id").textContent = id;
      $("timeline").replaceChildren(...t.steps.map((s) => el("li", { class: s.kind },
        "+" + ms(s.sinceStartMs) + " ", el("b", {}, s.kind === "event" ? s.type : s.level),
        " " + s.service + (s.kind === "log" ? ": " + s.msg : ""))));
      $("timeline-panel").hidden = false;
      $("timeline-panel").scrollIntoView();
    } catch (e) {
      if (e.message !== "signed out") console.warn("timeline", e.message);
    }
  }

  async function refresh() {
    if (!token()) return;
    try {
      const q = query ? "&q=" + encodeURIComponent(query) : "";
      const [stats, cons, events] = await Promise.all([
        api("/analytics/stats"),
        api("/analytics/consistency"),
        api("/analytics/events?size=25" + q),
      ]);
      drawBookings(stats.bookingsPerMinute || []);
      drawFunnel(stats.funnel);
      const t = stats.timeToConfirmMs;
      numbers($("ttc"), [["median", ms(t.median)], ["p95", ms(t.p95)], ["confirmed", t.count]]);
      numbers($("by-status"), Object.entries(stats.bookingsByStatus));
      drawConsistency(cons);
      drawEvents(events);
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
      $("status").textContent = "signed in · " + stats.totals.events + " events, " + stats.totals.logs + " log lines";
      document.body.dataset.ready = "1";
    } catch (e) {
      if (e.message !== "signed out") $("status").textContent = "refresh failed: " + e.message;
    }
  }

  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => signOut(""));
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); query = $("search-q").value.trim(); refresh(); });
  $("timeline-close").addEventListener("click", () => { $("timeline-panel").hidden = true; });
  if (token()) start(); else showLogin("");
})();
