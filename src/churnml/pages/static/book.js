/* churnml book of business: search, filters, sorting and paging over the rows embedded in the page
   as JSON (<script type="application/json" id="book-data">). No server, no library. Every value from
   the data is set with textContent or as an attribute, never parsed as HTML: names stay text.
   The state lives in the address (#q=...&tier=high&win=90&seg=SMB&sort=k:-1&page=2), so a link can
   carry a filtered view. */
(function () {
  "use strict";
  var holder = document.getElementById("book-data");
  var table = document.getElementById("book");
  var form = document.getElementById("book-controls");
  if (!holder || !table || !form) { return; }
  var rows = JSON.parse(holder.textContent);
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var cols = heads.map(function (th) {
    return { key: th.getAttribute("data-col"), label: th.textContent.trim(), num: th.classList.contains("num") };
  });
  var pageSize = parseInt(table.getAttribute("data-page-size"), 10) || 50;
  var locale = table.getAttribute("data-locale") || undefined;
  function n(x) { try { return x.toLocaleString(locale); } catch (e) { return String(x); } }
  var count = document.getElementById("book-count");
  var info = document.getElementById("page-info");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var TIERS = { high: 1, medium: 1, low: 1 };
  var SORTS = { n: "n", s: "s", t: "tr", p: "p", c: "c", q: "q", a: "a", k: "k", r: "r", w: "w" };
  var FIRST_DIR = { n: 1, s: 1, r: 1, w: 1 };  // text and renewal ascend first; figures descend
  var DEFAULT = { q: "", tier: "", win: "", seg: "", sort: "k:-1", page: "1" };
  var state = {};

  rows.forEach(function (r) { r._q = (r.n + " " + r.i).toLowerCase(); });

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    Object.keys(DEFAULT).forEach(function (k) { state[k] = params.has(k) ? params.get(k) : DEFAULT[k]; });
    if (!/^[a-z]:-?1$/.test(state.sort) || !SORTS[state.sort.charAt(0)]) { state.sort = DEFAULT.sort; }
    ["q", "tier", "win", "seg", "sort"].forEach(function (k) {
      var el = form.elements[k];
      el.value = state[k];
      if (el.value !== state[k] && el.tagName === "SELECT") {
        if (k === "sort") { el.selectedIndex = -1; } else { el.value = DEFAULT[k]; state[k] = DEFAULT[k]; }
      }
    });
  }

  function writeHash() {
    var params = new URLSearchParams();
    Object.keys(DEFAULT).forEach(function (k) { if (state[k] !== DEFAULT[k]) { params.set(k, state[k]); } });
    var h = params.toString();
    try { history.replaceState(null, "", h ? "#" + h : location.pathname + location.search); } catch (e) { /* file:// quirks */ }
  }

  function inWindow(r, win) {
    if (!win) { return true; }
    if (win === "monthly") { return !!r.m; }  // monthly terms renew every month: no date, never "passed"
    if (r.m) { return false; }
    if (win === "unknown") { return r.r === null; }
    if (r.r === null) { return false; }
    if (win === "past") { return r.r < 0; }
    if (win === "later") { return r.r > 365; }
    return r.r >= 0 && r.r <= parseInt(win, 10);
  }

  function selected() {
    var q = state.q.trim().toLowerCase();
    var out = rows.filter(function (r) {
      return (!q || r._q.indexOf(q) >= 0) && (!state.tier || r.t === state.tier) &&
        (!state.seg || r.s === state.seg) && inWindow(r, state.win);
    });
    var parts = state.sort.split(":");
    var field = SORTS[parts[0]] || "k";
    var dir = parts[1] === "1" ? 1 : -1;
    out.sort(function (a, b) {
      var x = a[field], y = b[field];
      if (x === null || x === "") { return (y === null || y === "") ? a.n.localeCompare(b.n) : 1; }  // missing last
      if (y === null || y === "") { return -1; }
      var c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return c !== 0 ? c * dir : a.n.localeCompare(b.n);
    });
    return out;
  }

  function text(el, value) { el.textContent = value === null || value === undefined ? "" : String(value); return el; }

  function span(cls, value) { var s = document.createElement("span"); s.className = cls; return text(s, value); }

  function fill(td, key, r) {
    if (key === "n") {
      var a = document.createElement("a");
      a.setAttribute("href", r.u);
      td.appendChild(text(a, r.n));
      if (r.d) { td.appendChild(document.createTextNode(" ")); td.appendChild(span("small nowrap acct-id", r.d)); }
    } else if (key === "t") {
      td.appendChild(span("tier tier-" + (TIERS[r.t] ? r.t : "unknown"), r.t));
    } else if (key === "c") {
      if (r.ct) { td.appendChild(span(r.c > 0 ? "up" : r.c < 0 ? "down" : "", r.ct)); }
    } else if (key === "r") {
      td.appendChild(span(r.x ? "nowrap past" : "nowrap", r.rt));
      if (r.x) { td.appendChild(document.createTextNode(" ")); td.appendChild(span("flag", "passed")); }
      if (r.rn) { var d = document.createElement("div"); d.className = "small nowrap"; td.appendChild(text(d, r.rn)); }
    } else if (key === "p") {
      td.appendChild(document.createTextNode(r.pt));
      if (r.pb) { var b = document.createElement("div"); b.className = "small nowrap"; td.appendChild(text(b, r.pb)); }
    } else {
      var v = { s: r.s, q: r.qt, a: r.at, k: r.kt, w: r.w }[key];
      if (v) { td.appendChild(document.createTextNode(v)); }
    }
  }

  function render() {
    var list = selected();
    var pages = Math.max(1, Math.ceil(list.length / pageSize));
    var page = Math.min(Math.max(parseInt(state.page, 10) || 1, 1), pages);
    state.page = String(page);
    var shown = list.slice((page - 1) * pageSize, page * pageSize);
    var frag = document.createDocumentFragment();
    shown.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-account", r.i);
      cols.forEach(function (c) {
        var td = document.createElement("td");
        td.setAttribute("data-label", c.label);
        td.className = "c-" + c.key + (c.num ? " num" : "");
        fill(td, c.key, r);
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    if (!shown.length) {
      var tr = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = cols.length;
      tr.appendChild(text(td, "No account matches these filters."));
      frag.appendChild(tr);
    }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    body.appendChild(frag);
    var first = list.length ? (page - 1) * pageSize + 1 : 0;
    text(count, (list.length === rows.length ? "" : n(list.length) + " of ") + n(rows.length) + " accounts" +
      (list.length > shown.length ? "; showing " + n(first) + "\u2013" + n(first + shown.length - 1) : "") + ".");
    table.setAttribute("data-matches", String(list.length));
    text(info, "page " + n(page) + " of " + n(pages));
    prev.disabled = page <= 1;
    next.disabled = page >= pages;
    var parts = state.sort.split(":");
    heads.forEach(function (th) {
      if (th.getAttribute("data-col") === parts[0]) {
        th.setAttribute("aria-sort", parts[1] === "1" ? "ascending" : "descending");
      } else { th.removeAttribute("aria-sort"); }
    });
    table.setAttribute("data-sorted-by", state.sort);
    writeHash();
  }

  function changed(resetPage) {
    ["q", "tier", "win", "seg"].forEach(function (k) { state[k] = form.elements[k].value; });
    if (form.elements.sort.value) { state.sort = form.elements.sort.value; }
    if (resetPage) { state.page = "1"; }
    render();
  }

  form.addEventListener("input", function () { changed(true); });
  form.addEventListener("change", function () { changed(true); });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
  form.addEventListener("reset", function () { setTimeout(function () { changed(true); }, 0); });
  heads.forEach(function (th) {
    var b = th.querySelector("button.sort");
    if (!b) { return; }
    b.addEventListener("click", function () {
      var key = b.getAttribute("data-sort");
      var parts = state.sort.split(":");
      var dir = parts[0] === key ? -parseInt(parts[1], 10) : (FIRST_DIR[key] || -1);
      state.sort = key + ":" + dir;
      var sel = form.elements.sort;
      sel.value = state.sort;
      if (sel.value !== state.sort) { sel.selectedIndex = -1; }
      state.page = "1";
      render();
    });
  });
  prev.addEventListener("click", function () { state.page = String(parseInt(state.page, 10) - 1); render(); });
  next.addEventListener("click", function () { state.page = String(parseInt(state.page, 10) + 1); render(); });
  window.addEventListener("hashchange", function () { readHash(); render(); });

  readHash();
  render();
})();
