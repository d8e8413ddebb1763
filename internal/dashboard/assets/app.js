// Breakwater dashboard: polls /dashboard/api/* every 5 s and draws with
// uPlot. Every text from the server is set with textContent (never
// HTML parsing): route names, consumers and event fields are data, not markup.
'use strict';
(function () {
  const REFRESH_MS = 5000;
  const SLOW_REFRESH_MS = 60000;
  const palette = ['#4aa3ff', '#5fd38d', '#ffb347', '#ff6b6b', '#c38cff', '#39d0d8', '#f78fb3', '#e6d36a', '#9aa7b8', '#7ee0a1'];
  const charts = {};
  let summaryUpdates = 0;
  let eventUpdates = 0;

  function $(id) { return document.getElementById(id); }

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('bad', !!bad);
  }

  async function getJSON(name) {
    const r = await fetch('/dashboard/api/' + name, {
      credentials: 'same-origin', cache: 'no-store', headers: { 'Accept': 'application/json' },
    });
    if (r.status === 401) {
      window.location.assign('/dashboard/');
      throw new Error('signed out');
    }
    if (!r.ok) throw new Error(name + ': HTTP ' + r.status);
    return r.json();
  }

  function fmt(v, digits) {
    if (v === null || v === undefined) return '–';
    return Number(v).toFixed(digits);
  }
  function fmtRate(v) { return fmt(v, 2); }
  function fmtPct(v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + ' %'; }
  function fmtSec(v) {
    if (v === null || v === undefined) return '–';
    if (v < 0.001) return (v * 1e6).toFixed(0) + ' µs';
    if (v < 1) return (v * 1e3).toFixed(1) + ' ms';
    return v.toFixed(2) + ' s';
  }

  // fillTable replaces tbody rows; a cell is a string or {text, cls}.
  function fillTable(id, rows, emptyText, rowClass) {
    const tbody = $(id).tBodies[0];
    const frag = document.createDocumentFragment();
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.className = 'empty';
      td.textContent = emptyText;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    rows.forEach(function (row, i) {
      const tr = document.createElement('tr');
      if (rowClass) tr.className = rowClass(i) || '';
      row.forEach(function (c) {
        const td = document.createElement('td');
        if (c !== null && typeof c === 'object') {
          td.textContent = c.text;
          td.className = c.cls || '';
        } else {
          td.textContent = c;
        }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    });
    tbody.replaceChildren(frag);
  }

  function chartWidth(el) { return Math.max(320, el.clientWidth || 460); }

  // drawChart draws one line per name; it rebuilds the chart when the set
  // of lines changes and only sets the data otherwise.
  function drawChart(id, times, names, values, yfmt) {
    const el = $(id);
    const key = names.join('\u0000');
    const data = [times].concat(names.map(function (n) { return values[n]; }));
    const c = charts[id];
    if (c && c.key === key) {
      c.plot.setData(data);
      return;
    }
    if (c) c.plot.destroy();
    const opts = {
      width: chartWidth(el), height: 220,
      scales: { x: { time: true } },
      series: [{}].concat(names.map(function (n, i) {
        return { label: n, stroke: palette[i % palette.length], width: 2, value: function (u, v) { return yfmt(v); } };
      })),
      axes: [
        { stroke: '#8a97a6', grid: { stroke: '#2a3440' }, ticks: { stroke: '#2a3440' } },
        { stroke: '#8a97a6', grid: { stroke: '#2a3440' }, ticks: { stroke: '#2a3440' }, size: 70,
          values: function (u, vals) { return vals.map(yfmt); } },
      ],
    };
    charts[id] = { key: key, plot: new uPlot(opts, data, el) };
  }

  function latencyRoute(names) {
    const sel = $('latency-route');
    const have = Array.from(sel.options).map(function (o) { return o.value; });
    if (have.join('\u0000') !== names.join('\u0000')) {
      const cur = sel.value;
      sel.replaceChildren.apply(sel, names.map(function (n) {
        const o = document.createElement('option');
        o.value = n;
        o.textContent = n;
        return o;
      }));
      if (names.indexOf(cur) >= 0) sel.value = cur;
    }
    return sel.value;
  }

  async function refreshSummary() {
    const s = await getJSON('summary');
    $('window').textContent = s.window_seconds === null ? '(collecting…)' : '(last ' + Math.round(s.window_seconds) + ' s)';
    const names = Object.keys(s.series).sort();
    const pick = function (field) {
      const out = {};
      names.forEach(function (n) { out[n] = s.series[n][field]; });
      return out;
    };
    drawChart('chart-rps', s.times, names, pick('rps'), fmtRate);
    drawChart('chart-errors', s.times, names, pick('error_rate'), fmtPct);
    drawChart('chart-p95', s.times, names, pick('p95'), fmtSec);
    const r = latencyRoute(names);
    const lat = r && s.series[r] ? { p50: s.series[r].p50, p95: s.series[r].p95, p99: s.series[r].p99 } : { p50: [], p95: [], p99: [] };
    if (!r) s.times = [];
    drawChart('chart-latency', s.times, ['p50', 'p95', 'p99'], lat, fmtSec);

    fillTable('routes', s.routes.map(function (x) {
      return [x.route, { text: fmtRate(x.requests_per_second), cls: 'num' }, { text: fmt(x.requests, 0), cls: 'num' },
        { text: fmtPct(x.error_rate), cls: 'num' }, { text: fmtPct(x.client_error_rate), cls: 'num' },
        { text: fmtSec(x.p50_seconds), cls: 'num' }, { text: fmtSec(x.p95_seconds), cls: 'num' }, { text: fmtSec(x.p99_seconds), cls: 'num' }];
    }), 'no traffic yet');
    const counts = function (list) {
      return list.map(function (c) { return [c.name, { text: fmt(c.window, 0), cls: 'num' }, { text: fmt(c.total, 0), cls: 'num' }]; });
    };
    fillTable('auth-failures', counts(s.auth_failures), 'none');
    fillTable('rejections', counts(s.rejections), 'none');
    fillTable('consumers', s.top_consumers.map(function (c) {
      return [c.id, { text: String(c.requests), cls: 'num' }, { text: String(c.error_bound), cls: 'num' },
        { text: String(c.status_4xx), cls: 'num' }, { text: String(c.status_5xx), cls: 'num' }];
    }), 'no authenticated traffic yet');
    summaryUpdates++;
    document.body.dataset.summaryUpdates = String(summaryUpdates);
    document.body.dataset.summaryPoints = String(s.times.length);
  }

  async function refreshEvents() {
    const e = await getJSON('events?limit=100');
    if (!e.available) {
      fillTable('event-feed', [], 'not available');
    } else {
      fillTable('event-feed', e.data.map(function (ev) {
        return [new Date(ev.time).toLocaleTimeString(), ev.kind, ev.severity, ev.client_ip || '', ev.route || '', ev.consumer || '', ev.reason || ''];
      }), 'no events', function (i) { return 'sev-' + e.data[i].severity; });
    }
    eventUpdates++;
    document.body.dataset.eventUpdates = String(eventUpdates);
  }

  async function refreshSlow() {
    const [inv, aud, cfg] = await Promise.all([getJSON('inventory'), getJSON('audit'), getJSON('config')]);
    $('inventory-view').textContent = inv.available ? JSON.stringify(inv.data, null, 2) : 'not available';
    $('config-view').textContent = cfg.available ? JSON.stringify(cfg.data, null, 2) : 'not available';
    if (!aud.available) {
      $('audit-score').textContent = '';
      fillTable('audit-findings', [], 'not available');
    } else if (aud.data.error) {
      $('audit-score').textContent = '';
      fillTable('audit-findings', [], aud.data.error);
    } else {
      const rep = aud.data.report;
      $('audit-score').textContent = '(score ' + rep.score + ' / 100)';
      const fs = rep.findings || [];
      fillTable('audit-findings', fs.map(function (f) {
        const loc = f.line > 0 ? f.file + ':' + f.line + ':' + f.col : f.file;
        return [f.severity, f.rule, f.category, loc, f.message, f.fix];
      }), 'no findings', function (i) { return 'sev-' + fs[i].severity; });
    }
    document.body.dataset.slowLoaded = 'true';
  }

  function guard(p) {
    return p.then(function () {
      setStatus('updated ' + new Date().toLocaleTimeString());
    }, function (err) {
      setStatus('error: ' + err.message, true);
    });
  }

  function tick() { guard(Promise.all([refreshSummary(), refreshEvents()])); }

  document.addEventListener('DOMContentLoaded', function () {
    $('latency-route').addEventListener('change', tick);
    window.addEventListener('resize', function () {
      Object.keys(charts).forEach(function (id) {
        charts[id].plot.setSize({ width: chartWidth($(id)), height: 220 });
      });
    });
    tick();
    guard(refreshSlow());
    setInterval(tick, REFRESH_MS);
    setInterval(function () { guard(refreshSlow()); }, SLOW_REFRESH_MS);
  });
})();
