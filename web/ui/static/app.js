// flowshield web UI: polls the daemon's JSON API and keeps the page in step.
// Plain browser JavaScript, no build step. Every piece of data reaches the
// page through textContent or attributes, never as HTML.
(function () {
  'use strict';

  const STATUS_EVERY_MS = 1000;
  const HOSTS_EVERY_MS = 2000;
  const ATTACKS_EVERY_MS = 2000;
  const BANS_EVERY_MS = 2000;
  const DETAIL_EVERY_MS = 5000; // refresh of an expanded active attack
  const HISTORY_POINTS = 900; // 15 minutes at one status a second
  const MAX_ATTACK_ROWS = 100;
  const TOKEN_KEY = 'flowshield-token';

  const $ = (id) => document.getElementById(id);

  // ---- formatting -------------------------------------------------------

  const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const fmtInt = (n) => (n == null || !isFinite(n) ? '–' : intFormat.format(Math.round(n)));
  const fmtMbps = (bps) => (bps == null || !isFinite(bps) ? '–' : (bps / 1e6).toFixed(2));

  // fmtShort writes an axis value with an SI suffix: 12.5k, 3.2M.
  function fmtShort(v) {
    if (v == null) return '';
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
    return String(Math.round(v * 100) / 100);
  }

  function fmtDuration(sec) {
    if (sec == null || !isFinite(sec)) return '–';
    sec = Math.max(0, Math.round(sec));
    const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60), s = sec % 60;
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + s + 's';
    return s + 's';
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  // fmtTime shows local time, with the date when it is not today.
  function fmtTime(iso) {
    if (!iso) return '–';
    const t = new Date(iso);
    if (isNaN(t)) return String(iso);
    const hms = pad2(t.getHours()) + ':' + pad2(t.getMinutes()) + ':' + pad2(t.getSeconds());
    const now = new Date();
    if (t.toDateString() === now.toDateString()) return hms;
    return t.getFullYear() + '-' + pad2(t.getMonth() + 1) + '-' + pad2(t.getDate()) + ' ' + hms;
  }

  function fmtAgo(iso) {
    if (!iso) return 'never';
    const t = Date.parse(iso);
    if (isNaN(t) || t <= 0) return 'never';
    return fmtDuration((Date.now() - t) / 1000) + ' ago';
  }

  const PROTOCOLS = { 1: 'icmp', 2: 'igmp', 6: 'tcp', 17: 'udp', 47: 'gre', 50: 'esp', 58: 'icmpv6', 132: 'sctp' };
  const protoName = (p) => PROTOCOLS[p] || String(p);

  // endpoint writes address:port, IPv6 in brackets.
  const endpoint = (addr, port) => (String(addr).includes(':') ? '[' + addr + ']' : addr) + ':' + port;

  function tcpFlags(f) {
    const names = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg'];
    const out = [];
    names.forEach((n, i) => { if (f & (1 << i)) out.push(n); });
    return out.join(',') || '-';
  }

  // ---- DOM helpers ------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null) continue;
        if (k === 'class') e.className = v;
        else if (k === 'text') e.textContent = v;
        else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v);
      }
    }
    for (const c of children) e.append(c);
    return e;
  }

  // setText changes a node's text only when it differs (no needless layout).
  function setText(node, text, title) {
    text = text == null ? '' : String(text);
    if (node.textContent !== text) node.textContent = text;
    if (title !== undefined && node.title !== title) node.title = title;
  }

  function setAttr(node, name, value) {
    value = String(value);
    if (node.getAttribute(name) !== value) node.setAttribute(name, value);
  }

  // syncChildren makes parent's keyed children match items, in order,
  // reusing the elements it already has so that rows do not flicker and a
  // click in progress is not lost. build(item) makes a new child; update
  // (child, item) refreshes one.
  function syncChildren(parent, items, key, build, update, skip) {
    const old = new Map();
    for (const c of Array.from(parent.children)) {
      if (skip && skip(c)) continue;
      old.set(c.dataset.key, c);
    }
    let prev = null;
    for (const it of items) {
      const k = key(it);
      let c = old.get(k);
      if (c) old.delete(k);
      else { c = build(it); c.dataset.key = k; }
      update(c, it);
      let want = prev ? prev.nextElementSibling : parent.firstElementChild;
      while (want && skip && skip(want)) want = want.nextElementSibling;
      if (want !== c) parent.insertBefore(c, want);
      prev = c;
    }
    for (const c of old.values()) c.remove();
  }

  function showEmpty(forId, empty) {
    const p = document.querySelector('[data-empty-for="' + forId + '"]');
    if (p) p.hidden = !empty;
  }

  let messageTimer = 0;
  function showMessage(text, kind) {
    const m = $('message');
    m.textContent = text;
    m.dataset.kind = kind || 'info';
    m.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => { m.hidden = true; }, kind === 'error' ? 15000 : 6000);
  }

  // ---- API --------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  let pendingRetry = null; // what to do again once a token is given

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    const init = { method, headers, cache: 'no-store', credentials: 'same-origin' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new APIError(0, 'daemon not reachable: ' + e.message);
    }
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON: keep the status */ }
    if (!res.ok) {
      const msg = data && data.error ? data.error : res.status + ' ' + res.statusText;
      if (res.status === 401) askToken(token ? 'the token was refused: ' + msg : msg);
      throw new APIError(res.status, msg);
    }
    return data;
  }

  function askToken(why) {
    const f = $('token-form');
    if (f.hidden) {
      f.hidden = false;
      $('token-input').focus();
    }
    f.querySelector('label').title = why;
  }

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token-input').value.trim();
    if (!v) return;
    sessionStorage.setItem(TOKEN_KEY, v);
    $('token-input').value = '';
    $('token-form').hidden = true;
    const retry = pendingRetry;
    pendingRetry = null;
    pollAllNow();
    if (retry) retry();
  });

  // ---- connection -------------------------------------------------------

  function setConn(ok, text) {
    const b = $('conn-state');
    setAttr(b, 'data-state', ok ? 'ok' : 'error');
    setText(b, text);
  }

  // ---- status, totals, charts, health -----------------------------------

  const history = { t: [], inBps: [], outBps: [], inPps: [], outPps: [] };
  const charts = [];

  function makeChart(box, label, a, b) {
    if (typeof window.uPlot !== 'function') return null;
    const opts = {
      width: Math.max(200, box.clientWidth),
      height: 200,
      scales: { x: { time: true, range: (u, min, max) => [Math.min(min, max - 60), max] }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      series: [
        {},
        { label: 'in ' + label, stroke: '#1f6fb2', width: 2, fill: 'rgba(31,111,178,0.08)', value: (u, v) => fmtShort(v) },
        { label: 'out ' + label, stroke: '#d2691e', width: 2, value: (u, v) => fmtShort(v) },
      ],
      axes: [{}, { values: (u, vals) => vals.map(fmtShort), size: 60 }],
    };
    const u = new window.uPlot(opts, [history.t, history[a], history[b]], box);
    return { u, box, a, b };
  }

  function initCharts() {
    const c1 = makeChart($('chart-bps'), 'Mbps', 'inBps', 'outBps');
    const c2 = makeChart($('chart-pps'), 'pps', 'inPps', 'outPps');
    for (const c of [c1, c2]) if (c) charts.push(c);
    if (!charts.length) showMessage('charts unavailable: uPlot did not load', 'error');
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        for (const c of charts) c.u.setSize({ width: Math.max(200, c.box.clientWidth), height: 200 });
      }, 100);
    });
  }

  function pushHistory(s) {
    const h = history;
    h.t.push(Date.now() / 1000);
    h.inBps.push(s.totals.in.bps / 1e6);
    h.outBps.push(s.totals.out.bps / 1e6);
    h.inPps.push(s.totals.in.pps);
    h.outPps.push(s.totals.out.pps);
    if (h.t.length > HISTORY_POINTS) for (const k of Object.keys(h)) h[k].shift();
    for (const c of charts) c.u.setData([h.t, h[c.a], h[c.b]]);
  }

  function renderStatus(s) {
    setText($('version'), (/^\d/.test(s.version) ? 'v' : '') + s.version, s.commit ? 'commit ' + s.commit : '');
    setText($('uptime'), 'up ' + fmtDuration(s.uptime), 'started ' + s.started_at);
    setText($('total-in-mbps'), fmtMbps(s.totals.in.bps));
    setText($('total-in-pps'), fmtInt(s.totals.in.pps));
    setText($('total-in-flows'), fmtInt(s.totals.in.flows));
    setText($('total-out-mbps'), fmtMbps(s.totals.out.bps));
    setText($('total-out-pps'), fmtInt(s.totals.out.pps));
    setText($('total-out-flows'), fmtInt(s.totals.out.flows));
    setText($('total-records'), fmtInt(s.records));
    setText($('total-dropped'), fmtInt(s.dropped));
    renderExporters(s.exporters || []);
    renderRouters(s.routers || []);
  }

  function cells(tr, n) {
    while (tr.children.length < n) tr.append(el('td'));
    return tr.children;
  }

  // fmtTimer shows a timer in seconds as "1 s", "15 s", "1 m", "30 m", or "?" while unknown.
  function fmtTimer(s) {
    if (s === null || s === undefined) return '?';
    if (s >= 60 && s % 60 === 0) return (s / 60) + ' m';
    return Math.round(s) + ' s';
  }

  function renderExporters(list) {
    const tbody = $('exporters').tBodies[0];
    syncChildren(tbody, list, (e) => e.address + '/' + (e.observation_domain || 0),
      () => el('tr', { 'data-testid': 'exporter-row' }),
      (tr, e) => {
        const td = cells(tr, 12);
        const errs = Object.entries(e.decode_errors || {}).filter(([, n]) => n > 0);
        const errTotal = errs.reduce((a, [, n]) => a + n, 0);
        const stale = Date.now() - Date.parse(e.last_seen) > 60000;
        setText(td[0], e.address + (e.observation_domain ? ' #' + e.observation_domain : ''));
        setText(td[1], e.protocol + ' v' + e.version);
        setText(td[2], fmtInt(e.datagrams));
        setText(td[3], fmtInt(e.records));
        setText(td[4], fmtInt(errTotal), errs.map(([k, n]) => k + ': ' + n).join(', '));
        td[4].className = 'num' + (errTotal > 0 ? ' warn' : '');
        setText(td[5], fmtInt(e.garbage));
        td[5].className = 'num' + (e.garbage > 0 ? ' warn' : '');
        setText(td[6], fmtInt(e.templates));
        setText(td[7], fmtAgo(e.last_seen), e.last_seen);
        td[7].className = stale ? 'warn' : '';
        setText(td[8], '1:' + e.sampling_rate);
        setText(td[9], (e.clock_skew_seconds || 0).toFixed(1) + ' s');
        td[9].className = 'num' + (Math.abs(e.clock_skew_seconds || 0) > 5 ? ' warn' : '');
        setText(td[10], fmtTimer(e.active_timeout_s), e.active_timeout_from || 'not known yet');
        setText(td[11], fmtTimer(e.inactive_lag_s), 'learned from the records');
        // Detection is fastest with 1 s timers; longer ones delay it (see README).
        td[10].className = 'num' + (e.active_timeout_s > 1 ? ' warn' : '');
        td[11].className = 'num' + (e.inactive_lag_s > 2 ? ' warn' : '');
        for (const i of [2, 3, 6, 8]) td[i].className = 'num';
      });
    showEmpty('exporters', list.length === 0);
  }

  function renderRouters(list) {
    const tbody = $('routers').tBodies[0];
    syncChildren(tbody, list, (r) => r.address,
      () => el('tr', { 'data-testid': 'router-row' }),
      (tr, r) => {
        const td = cells(tr, 4);
        setText(td[0], r.address);
        setText(td[1], r.connected ? 'connected' : 'disconnected');
        td[1].className = r.connected ? 'ok' : 'bad';
        setText(td[2], r.last_error || '');
        setText(td[3], r.last_error_at ? fmtTime(r.last_error_at) : '', r.last_error_at || '');
      });
    showEmpty('routers', list.length === 0);
    const b = $('router-state');
    if (list.length === 0) {
      setAttr(b, 'data-state', 'none');
      setText(b, 'no router');
    } else {
      const up = list.filter((r) => r.connected).length;
      setAttr(b, 'data-state', up === list.length ? 'ok' : 'error');
      setText(b, list.length === 1
        ? (up ? 'router connected' : 'router disconnected')
        : up + '/' + list.length + ' routers connected');
    }
  }

  async function pollStatus() {
    const s = await api('GET', 'api/v1/status');
    setConn(true, 'live');
    renderStatus(s);
    pushHistory(s);
  }

  // ---- top hosts --------------------------------------------------------

  function renderHosts(id, list) {
    const tbody = $(id).tBodies[0];
    syncChildren(tbody, list, (h) => h.ip,
      (h) => el('tr', { 'data-testid': 'host-row', 'data-ip': h.ip }),
      (tr, h) => {
        const td = cells(tr, 9);
        setText(td[0], h.ip + (h.group ? ' (' + h.group + ')' : ''));
        setText(td[1], fmtInt(h.pps));
        setText(td[2], fmtMbps(h.bps));
        setText(td[3], fmtInt(h.flows));
        setText(td[4], fmtInt(h.tcp_pps));
        setText(td[5], fmtInt(h.udp_pps));
        setText(td[6], fmtInt(h.icmp_pps));
        setText(td[7], fmtInt(h.syn_pps));
        setText(td[8], fmtInt(h.frag_pps));
        for (let i = 1; i < 9; i++) td[i].className = 'num';
      });
    showEmpty(id, list.length === 0);
  }

  async function pollHosts() {
    const sort = $('hosts-sort').value;
    const limit = $('hosts-limit').value;
    const q = '&sort=' + encodeURIComponent(sort) + '&limit=' + encodeURIComponent(limit);
    const [hin, hout] = await Promise.all([
      api('GET', 'api/v1/hosts?direction=in' + q),
      api('GET', 'api/v1/hosts?direction=out' + q),
    ]);
    renderHosts('hosts-in', hin || []);
    renderHosts('hosts-out', hout || []);
  }

  // ---- attacks ----------------------------------------------------------

  const expanded = new Set(); // attack ids whose details are open
  const details = new Map(); // attack id -> {data, fetchedAt, error}

  function attackTarget(a) {
    if (a.scope === 'group') return 'group ' + (a.group || '?');
    return (a.ip || '?') + (a.group ? ' (' + a.group + ')' : '');
  }

  function buildAttack(a) {
    const tb = el('tbody', { 'data-testid': 'attack', 'data-id': a.id });
    const row = el('tr', { class: 'attack-row', tabindex: '0', role: 'button', 'aria-expanded': 'false' });
    for (let i = 0; i < 10; i++) row.append(el('td'));
    row.children[4].setAttribute('data-testid', 'attack-type');
    const toggle = () => toggleAttack(a.id);
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); }
    });
    const detailRow = el('tr', { class: 'attack-detail', 'data-testid': 'attack-detail', hidden: '' },
      el('td', { colspan: '10' }));
    tb.append(row, detailRow);
    return tb;
  }

  function updateAttack(tb, a) {
    const active = !a.ended_at;
    setAttr(tb, 'data-type', a.type);
    setAttr(tb, 'data-state', active ? 'active' : 'ended');
    tb.classList.toggle('active', active);
    const row = tb.rows[0];
    const td = row.children;
    setText(td[0], active ? 'ACTIVE' : 'ended');
    td[0].className = active ? 'bad' : '';
    setText(td[1], fmtTime(a.started_at), a.started_at);
    setText(td[2], attackTarget(a));
    setText(td[3], a.direction);
    setText(td[4], a.type);
    setText(td[5], a.protocol || '');
    setText(td[6], fmtInt(a.peak_pps));
    setText(td[7], fmtMbps(a.peak_bps));
    setText(td[8], a.banned ? 'yes' : 'no');
    setText(td[9], a.ended_at ? fmtTime(a.ended_at) : '', a.ended_at || '');
    td[6].className = td[7].className = 'num';
    const open = expanded.has(a.id);
    setAttr(row, 'aria-expanded', open);
    tb.rows[1].hidden = !open;
    if (open) {
      renderAttackDetail(tb.rows[1].cells[0], a.id);
      const d = details.get(a.id);
      if (!d || (active && Date.now() - d.fetchedAt > DETAIL_EVERY_MS)) fetchDetail(a.id);
    }
  }

  function toggleAttack(id) {
    if (expanded.has(id)) expanded.delete(id);
    else expanded.add(id);
    const tb = document.querySelector('#attacks tbody[data-id="' + CSS.escape(id) + '"]');
    if (tb && tb._attack) updateAttack(tb, tb._attack);
  }

  const fetching = new Set();
  async function fetchDetail(id) {
    if (fetching.has(id)) return;
    fetching.add(id);
    try {
      const data = await api('GET', 'api/v1/attacks/' + encodeURIComponent(id));
      details.set(id, { data, fetchedAt: Date.now() });
    } catch (e) {
      details.set(id, { error: e.message, fetchedAt: Date.now() });
    } finally {
      fetching.delete(id);
    }
    const tb = document.querySelector('#attacks tbody[data-id="' + CSS.escape(id) + '"]');
    if (tb && expanded.has(id)) renderAttackDetail(tb.rows[1].cells[0], id);
  }

  function renderAttackDetail(td, id) {
    const d = details.get(id);
    const stamp = d ? String(d.fetchedAt) : 'loading';
    if (td.dataset.stamp === stamp) return;
    td.dataset.stamp = stamp;
    // A refresh keeps where the reader had scrolled to.
    const oldPre = td.querySelector('pre.details');
    const oldBox = td.querySelector('div.flows-box');
    const scroll = [oldPre ? oldPre.scrollTop : 0, oldBox ? oldBox.scrollTop : 0];
    td.replaceChildren();
    if (!d) { td.append(el('p', { class: 'muted', text: 'loading…' })); return; }
    if (d.error) { td.append(el('p', { class: 'bad', text: 'could not load the details: ' + d.error })); return; }
    const a = d.data;
    if (a.fingerprint) td.append(...fingerprintView(a.fingerprint));
    const pre = el('pre', { class: 'details', 'data-testid': 'attack-details', text: a.details || '(no details yet)' });
    td.append(pre);
    pre.scrollTop = scroll[0];
    const flows = a.flows || [];
    if (!flows.length) { td.append(el('p', { class: 'muted', text: 'no flow sample' })); return; }
    const head = el('tr', null, ...['time', 'source', 'destination', 'protocol', 'tcp flags', 'frag', 'packets', 'bytes', 'sampling', 'exporter']
      .map((h) => el('th', { text: h })));
    const body = el('tbody');
    for (const f of flows) {
      body.append(el('tr', { title: f.line || '' },
        el('td', { text: fmtTime(f.time) }),
        el('td', { text: endpoint(f.src, f.src_port) }),
        el('td', { text: endpoint(f.dst, f.dst_port) }),
        el('td', { text: protoName(f.protocol) }),
        el('td', { text: f.protocol === 6 ? tcpFlags(f.tcp_flags) : '-' }),
        el('td', { text: f.fragment ? 'yes' : '' }),
        el('td', { class: 'num', text: fmtInt(f.packets) }),
        el('td', { class: 'num', text: fmtInt(f.bytes) }),
        el('td', { class: 'num', text: '1:' + f.sampling_rate }),
        el('td', { text: f.exporter || '' })));
    }
    const box = el('div', { class: 'flows-box' },
      el('table', { class: 'flows', 'data-testid': 'attack-flows' }, el('thead', null, head), body));
    td.append(el('h4', { text: 'Flow sample (' + flows.length + ' records)' }), box);
    box.scrollTop = scroll[1];
  }

  // An attack's fingerprint: what its packets have in common, one row per
  // vector (the kinds of packet a narrow raw rule can drop).
  function fingerprintView(fp) {
    const pct = (x) => Math.round(100 * x) + '%';
    const from = fp.records > 0 ? fp.records + ' sampled records' : 'the counters (no flow sample)';
    const title = el('h4', { 'data-testid': 'attack-fingerprint-share',
      text: 'Fingerprint: ' + (fp.vectors.length ? pct(fp.share) + " of the attack's packets" : 'none, no kind of packet characterises the attack') +
        ', from ' + from });
    if (!fp.vectors.length) return [title];
    const any = (v) => (v == null ? 'any' : v);
    const head = el('tr', null, ...['protocol', 'src port', 'dst ports', 'tcp flags', 'fragment', 'packet size', 'share']
      .map((h) => el('th', { text: h })));
    const body = el('tbody');
    for (const v of fp.vectors) {
      body.append(el('tr', { 'data-testid': 'fingerprint-vector' },
        el('td', { text: any(v.protocol) }),
        el('td', { text: v.src_ports ? v.src_ports.join(',') : 'any' }),
        el('td', { text: v.dst_ports ? v.dst_ports.join(',') : 'any' }),
        el('td', { text: any(v.tcp_flags) }),
        el('td', { text: v.fragment ? 'yes' : '' }),
        el('td', { text: v.packet_size ? v.packet_size.min + '-' + v.packet_size.max + ' bytes' : 'any' }),
        el('td', { class: 'num', text: pct(v.share) })));
    }
    return [title, el('table', { class: 'flows fingerprint', 'data-testid': 'attack-fingerprint' }, el('thead', null, head), body)];
  }

  async function pollAttacks() {
    const list = (await api('GET', 'api/v1/attacks')) || [];
    // Active first, then the most recent.
    list.sort((x, y) => (!x.ended_at - !y.ended_at) * -1 || Date.parse(y.started_at) - Date.parse(x.started_at));
    const shown = list.slice(0, MAX_ATTACK_ROWS);
    const table = $('attacks');
    syncChildren(table, shown, (a) => a.id, buildAttack,
      (tb, a) => { tb._attack = a; updateAttack(tb, a); },
      (c) => c.tagName !== 'TBODY');
    const ids = new Set(shown.map((a) => a.id));
    for (const id of Array.from(details.keys())) if (!ids.has(id)) { details.delete(id); expanded.delete(id); }
    showEmpty('attacks', shown.length === 0);
  }

  // ---- bans -------------------------------------------------------------

  function routerStates(rs) {
    if (!rs || !rs.length) return '–';
    return rs.map((r) => r.address + ': ' + r.state).join(', ');
  }

  async function removeBan(prefix, button) {
    button.disabled = true;
    try {
      await api('DELETE', 'api/v1/bans/' + encodeURIComponent(prefix));
      showMessage('removed the ban of ' + prefix, 'info');
      const tr = button.closest('tr');
      if (tr) tr.remove();
      pollBans().catch(() => {});
    } catch (e) {
      button.disabled = false;
      if (e.status === 401) {
        pendingRetry = () => removeBan(prefix, button);
        showMessage('removing ' + prefix + ' needs the API token', 'error');
      } else {
        showMessage('could not remove the ban of ' + prefix + ': ' + e.message, 'error');
      }
    }
  }

  function renderBans(list) {
    const tbody = $('bans').tBodies[0];
    syncChildren(tbody, list, (b) => b.prefix + ' ' + b.direction,
      (b) => {
        const tr = el('tr', { 'data-testid': 'ban-row', 'data-prefix': b.prefix });
        for (let i = 0; i < 8; i++) tr.append(el('td'));
        const btn = el('button', { type: 'button', class: 'remove', 'data-testid': 'ban-remove', text: 'remove' });
        btn.addEventListener('click', () => removeBan(tr.dataset.prefix, btn));
        tr.append(el('td', null, btn));
        return tr;
      },
      (tr, b) => {
        const td = tr.children;
        setAttr(tr, 'data-direction', b.direction);
        setText(td[0], b.prefix);
        setText(td[1], b.direction);
        setText(td[2], (b.actions || []).join(', ') || 'none');
        setText(td[3], b.reason || '');
        setText(td[4], b.attack_id || '');
        setText(td[5], fmtTime(b.created_at), b.created_at);
        setText(td[6], fmtDuration((Date.parse(b.expires_at) - Date.now()) / 1000), b.expires_at);
        setText(td[7], routerStates(b.routers));
      });
    showEmpty('bans', list.length === 0);
  }

  async function pollBans() {
    renderBans((await api('GET', 'api/v1/bans')) || []);
  }

  $('ban-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {
      prefix: $('ban-prefix').value.trim(),
      direction: $('ban-direction').value,
      ttl: $('ban-ttl').value.trim(),
      reason: $('ban-reason').value.trim(),
    };
    const submit = async () => {
      try {
        const b = await api('POST', 'api/v1/bans', body);
        showMessage('banned ' + (b && b.prefix ? b.prefix : body.prefix), 'info');
        $('ban-form').reset();
        await pollBans();
      } catch (e) {
        if (e.status === 401) pendingRetry = submit;
        showMessage('could not add the ban: ' + e.message, 'error');
      }
    };
    await submit();
  });

  // ---- polling ----------------------------------------------------------

  const pollers = [];

  // poller runs fn every ms, never two at once; a failure marks the
  // connection and is retried on the next tick.
  function poller(name, ms, fn) {
    let timer = 0;
    let running = false;
    const tick = async () => {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try {
        await fn();
      } catch (e) {
        if (e.status === 0) setConn(false, 'daemon unreachable');
        else if (e.status === 401) setConn(false, 'token needed');
        else setConn(false, name + ': ' + e.message);
      } finally {
        running = false;
        timer = setTimeout(tick, ms);
      }
    };
    pollers.push(tick);
    return tick;
  }

  function pollAllNow() { for (const p of pollers) p(); }

  function start() {
    initCharts();
    poller('status', STATUS_EVERY_MS, pollStatus);
    poller('hosts', HOSTS_EVERY_MS, pollHosts);
    poller('attacks', ATTACKS_EVERY_MS, pollAttacks);
    poller('bans', BANS_EVERY_MS, pollBans);
    $('hosts-sort').addEventListener('change', pollAllNow);
    $('hosts-limit').addEventListener('change', pollAllNow);
    pollAllNow();
  }

  start();
})();
