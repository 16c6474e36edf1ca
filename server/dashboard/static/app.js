// Orbit billing dashboard: vanilla JavaScript, no dependencies. It calls the
// org API of the server that serves it (same origin) with the API key the
// user signs in with, which lives in sessionStorage only (this tab) and is
// removed by Sign out. Data is always written with textContent, never HTML.
'use strict';

(function () {
  const KEY_STORAGE = 'orbit.apiKey';
  const API = '/api/v1/billing';
  const PAGE_SIZE = 30;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const CHART_COLORS = ['#1d4ed8', '#047857', '#b45309', '#7e22ce', '#be123c', '#0e7490'];

  const $ = (id) => document.getElementById(id);

  const state = {
    days: 30,
    tx: { cursors: [null], page: 0, type: '', channel: '', next: null },
    usageSeq: 0,
  };

  // ---- API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function apiKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ''; } catch (e) { return ''; }
  }

  // api calls the org API and returns the envelope's data, or throws an
  // ApiError whose message is the envelope's error.message.
  async function api(method, path, opts) {
    opts = opts || {};
    const key = opts.key || apiKey();
    const headers = Object.assign({ 'X-API-Key': key, 'Accept': 'application/json' }, opts.headers || {});
    const init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    let resp;
    try {
      resp = await fetch(API + path, init);
    } catch (e) {
      throw new ApiError('Could not reach the server: ' + e.message, 0, 'network');
    }
    let payload = null;
    try { payload = await resp.json(); } catch (e) { payload = null; }
    if (!opts.key && apiKey() !== key) throw new ApiError('', 0, 'cancelled'); // signed out meanwhile
    if (!resp.ok) {
      const err = payload && payload.error;
      const msg = (err && err.message) || ('Request failed with HTTP ' + resp.status);
      throw new ApiError(msg, resp.status, err && err.code);
    }
    if (!payload || !('data' in payload)) {
      throw new ApiError('Unexpected answer from the server (HTTP ' + resp.status + ')', resp.status, 'bad_response');
    }
    return payload.data;
  }

  // ---- formatting --------------------------------------------------------

  // usd formats micros exactly: at least 2 decimals, up to 6 (sub-cent spends).
  function usd(micros) {
    const n = Number(micros) || 0;
    const neg = n < 0;
    const abs = Math.abs(n);
    const whole = Math.trunc(abs / 1e6);
    let frac = String(abs % 1e6).padStart(6, '0').replace(/0+$/, '');
    if (frac.length < 2) frac = frac.padEnd(2, '0');
    return (neg ? '−$' : '$') + whole.toLocaleString('en-US') + '.' + frac;
  }

  function minor(amount, currency) {
    const cur = (currency || 'usd').toUpperCase();
    const v = (Number(amount) || 0) / 100;
    try {
      return new Intl.NumberFormat('en-US', { style: 'currency', currency: cur }).format(v);
    } catch (e) {
      return cur + ' ' + v.toFixed(2);
    }
  }

  function when(ts) {
    if (!ts) return '—';
    const d = new Date(ts);
    if (isNaN(d.getTime())) return ts;
    return d.toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'short' });
  }

  function shortDate(day) {
    const d = new Date(day + 'T00:00:00Z');
    if (isNaN(d.getTime())) return day;
    return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
  }

  const REASONS = {
    operator_hold: 'The operator has put this organization on hold.',
    payment_disputed: 'A card payment is disputed; outbound traffic stays paused until the operator lifts it.',
    insufficient_balance: 'Available funds are at or below the pause threshold. Add funds to resume sending.',
  };

  const TYPE_LABELS = {
    spend: 'Spend', topup: 'Top-up', refund: 'Refund', topup_refund: 'Top-up refund',
    grant: 'Grant', expiry: 'Expiry', adjustment: 'Adjustment', dispute: 'Dispute',
  };

  // ---- DOM helpers -------------------------------------------------------

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  function cell(label, text, cls) {
    const td = el('td', { 'data-label': label }, text);
    if (cls) td.className = cls;
    return td;
  }

  function emptyRow(tbody, cols, text) {
    const tr = el('tr');
    const td = el('td', { colspan: String(cols) }, text);
    td.className = 'empty empty-row';
    tr.appendChild(td);
    tbody.appendChild(tr);
  }

  function showError(id, err) {
    const p = $(id);
    if (!err) { p.hidden = true; p.textContent = ''; return; }
    p.textContent = typeof err === 'string' ? err : err.message;
    p.hidden = false;
  }

  function notice(text) {
    const p = $('notice');
    p.textContent = text || '';
    p.hidden = !text;
  }

  // handle shows an API error where it belongs; a rejected key signs out.
  function handle(id, err) {
    if (err && err.code === 'cancelled') return;
    if (err && err.status === 401) {
      signOut();
      showError('signin-error', err);
      return;
    }
    showError(id, err);
  }

  // ---- views -------------------------------------------------------------

  function showSignin() {
    $('app').hidden = true;
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('apikey').value = '';
    $('apikey').focus();
  }

  function showApp() {
    $('signin').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    showError('signin-error', null);
    loadAll();
  }

  function signOut() {
    try { sessionStorage.removeItem(KEY_STORAGE); } catch (e) { /* ignore */ }
    state.tx = { cursors: [null], page: 0, type: '', channel: '', next: null };
    for (const id of ['tx-rows', 'inv-rows', 'usage-rows', 'usage-charts']) $(id).replaceChildren();
    for (const id of ['balance-usd', 'balance-available', 'balance-reserved', 'balance-threshold', 'balance-outbound']) $(id).textContent = '–';
    for (const id of ['global-error', 'balance-error', 'usage-error', 'tx-error', 'inv-error', 'topup-error']) showError(id, null);
    $('paused').hidden = true;
    $('tx-type').value = '';
    $('tx-channel').value = '';
    notice('');
    showSignin();
  }

  function loadAll() {
    loadBalance();
    loadStatus();
    loadUsage();
    loadTx();
    loadInvoices();
  }

  async function loadBalance() {
    const card = $('balance-card');
    card.setAttribute('aria-busy', 'true');
    try {
      const b = await api('GET', '/balance');
      $('balance-usd').textContent = usd(b.balance_micros);
      $('balance-available').textContent = usd(b.available_micros);
      $('balance-reserved').textContent = usd(b.reserved_micros);
      $('balance-threshold').textContent = usd(b.pause_threshold_micros);
      const out = $('balance-outbound');
      out.replaceChildren(el('span', { class: 'pill ' + (b.outbound_paused ? 'bad' : 'ok') }, b.outbound_paused ? 'Paused' : 'Active'));
      const paused = $('paused');
      if (b.outbound_paused) {
        const reason = b.outbound_block_reason || 'unknown';
        let text = (REASONS[reason] || '') + ' Reason: ' + reason + '.';
        if (b.outbound_block_details) text += ' Details: ' + b.outbound_block_details;
        $('paused-reason').textContent = text.trim();
        paused.hidden = false;
      } else {
        paused.hidden = true;
      }
      showError('balance-error', null);
    } catch (err) {
      handle('balance-error', err);
    } finally {
      card.setAttribute('aria-busy', 'false');
    }
  }

  async function loadStatus() {
    try {
      const s = await api('GET', '/status');
      const p = $('topup-provider');
      if (s.payment_provider === 'dev') {
        p.textContent = 'Development payment provider: no card is charged. The wallet is credited when you press Pay.';
      } else {
        p.textContent = 'You will pay on Stripe Checkout; the wallet is credited when the payment completes.';
      }
      const last = s.last_topup;
      $('last-topup').textContent = last
        ? 'Last top-up: ' + minor(last.amount, last.currency) + ' on ' + when(last.paid_at || last.created_at) + '.'
        : 'No top-up yet.';
      const can = s.can_checkout !== false;
      $('topup-submit').disabled = !can;
      if (!can) {
        showError('topup-error', s.can_manage ? 'Top-ups are not available right now.' : 'This API key cannot add funds: an admin key is required.');
      }
    } catch (err) {
      handle('topup-error', err);
    }
  }

  async function loadUsage() {
    const days = state.days;
    const seq = ++state.usageSeq;
    for (const b of document.querySelectorAll('.seg')) b.setAttribute('aria-pressed', String(Number(b.dataset.days) === days));
    try {
      const [series, rows] = await Promise.all([
        api('GET', '/usage?days=' + days + '&granularity=day'),
        api('GET', '/usage-by-channel?days=' + days),
      ]);
      if (seq !== state.usageSeq) return; // a newer period was asked for
      renderCharts(series, days);
      renderUsageRows(rows);
      showError('usage-error', null);
    } catch (err) {
      handle('usage-error', err);
    }
  }

  function renderCharts(series, days) {
    const box = $('usage-charts');
    box.replaceChildren();
    const channels = (series && series.channels) || [];
    let total = 0;
    const list = $('channel-list');
    const known = new Set(['sms', 'voice', 'whatsapp', 'llm']);
    channels.forEach((ch) => known.add(ch.channel));
    list.replaceChildren(...[...known].sort().map((c) => el('option', { value: c })));
    if (!channels.length) {
      box.appendChild(el('p', { class: 'empty' }, 'No usage in the last ' + days + ' days.'));
      $('usage-summary').textContent = 'No spend in the last ' + days + ' days.';
      return;
    }
    channels.forEach((ch, idx) => {
      const pts = ch.points || [];
      const sum = pts.reduce((a, p) => a + (p.total_cost_micros || 0), 0);
      const msgs = pts.reduce((a, p) => a + (p.total_messages || 0), 0);
      total += sum;
      const max = Math.max(1, ...pts.map((p) => p.total_cost_micros || 0));
      const fig = el('figure', { class: 'chart' });
      const cap = el('figcaption');
      cap.appendChild(el('strong', null, ch.channel));
      cap.appendChild(el('span', null, usd(sum) + ' · ' + msgs.toLocaleString('en-US') + ' msgs'));
      fig.appendChild(cap);
      const W = Math.max(pts.length, 1) * 10;
      const H = 100;
      const s = svg('svg', {
        viewBox: '0 0 ' + W + ' ' + H, preserveAspectRatio: 'none', role: 'img', focusable: 'false',
        'aria-label': ch.channel + ': ' + usd(sum) + ' over the last ' + days + ' days, peak ' + usd(max === 1 ? 0 : max) + ' a day',
      });
      const color = CHART_COLORS[idx % CHART_COLORS.length];
      for (const y of [0, 50]) s.appendChild(svg('line', { x1: 0, x2: W, y1: y + 0.5, y2: y + 0.5, stroke: '#e2e8f0', 'stroke-width': 1, 'vector-effect': 'non-scaling-stroke' }));
      pts.forEach((p, i) => {
        const v = p.total_cost_micros || 0;
        const h = v > 0 ? Math.max(2, (v / max) * (H - 4)) : 0;
        const r = svg('rect', { x: i * 10 + 1.5, y: H - h, width: 7, height: h, fill: color, rx: 1 });
        const t = svg('title', {});
        t.textContent = p.date + ': ' + usd(v) + ', ' + (p.total_messages || 0) + ' messages';
        r.appendChild(t);
        s.appendChild(r);
      });
      s.appendChild(svg('line', { x1: 0, x2: W, y1: H - 0.5, y2: H - 0.5, stroke: '#64748b', 'stroke-width': 1, 'vector-effect': 'non-scaling-stroke' }));
      fig.appendChild(s);
      const axis = el('div', { class: 'axis', 'aria-hidden': 'true' });
      axis.appendChild(el('span', null, pts.length ? shortDate(pts[0].date) : ''));
      axis.appendChild(el('span', null, 'peak ' + usd(max === 1 ? 0 : max) + '/day'));
      axis.appendChild(el('span', null, pts.length ? shortDate(pts[pts.length - 1].date) : ''));
      fig.appendChild(axis);
      box.appendChild(fig);
    });
    $('usage-summary').textContent = usd(total) + ' spent across ' + channels.length + (channels.length === 1 ? ' channel' : ' channels') + ' in the last ' + days + ' days.';
  }

  function renderUsageRows(rows) {
    const tbody = $('usage-rows');
    tbody.replaceChildren();
    if (!rows || !rows.length) {
      emptyRow(tbody, 5, 'No usage in this period.');
      return;
    }
    for (const r of rows) {
      const tr = el('tr');
      tr.appendChild(cell('Channel', r.key || r.channel));
      tr.appendChild(cell('Messages', Number(r.total_messages).toLocaleString('en-US'), 'num'));
      tr.appendChild(cell('Delivered', Number(r.delivered).toLocaleString('en-US'), 'num'));
      tr.appendChild(cell('Failed', Number(r.failed).toLocaleString('en-US'), 'num'));
      tr.appendChild(cell('Cost', usd(r.total_cost_micros), 'num'));
      tbody.appendChild(tr);
    }
  }

  async function loadTx() {
    const tx = state.tx;
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (tx.type) q.set('type', tx.type);
    if (tx.channel) q.set('channel', tx.channel);
    const cur = tx.cursors[tx.page];
    if (cur) { q.set('cursor_ts', cur.cursor_ts); q.set('cursor_id', cur.cursor_id); }
    $('tx-prev').disabled = true;
    $('tx-next').disabled = true;
    try {
      const d = await api('GET', '/transactions?' + q.toString());
      renderTx(d.transactions || []);
      tx.next = d.has_more ? d.next_cursor : null;
      $('tx-page').textContent = 'Page ' + (tx.page + 1);
      const n = (d.transactions || []).length;
      const first = tx.page * PAGE_SIZE + 1;
      $('tx-status').textContent = n
        ? 'Showing entries ' + first + '–' + (first + n - 1) + (tx.type || tx.channel ? ' (filtered)' : '') + (d.has_more ? '; more on the next page.' : '.')
        : 'No entries' + (tx.type || tx.channel ? ' match these filters.' : ' yet.');
      showError('tx-error', null);
    } catch (err) {
      handle('tx-error', err);
    } finally {
      $('tx-prev').disabled = tx.page === 0;
      $('tx-next').disabled = !tx.next;
    }
  }

  function renderTx(list) {
    const tbody = $('tx-rows');
    tbody.replaceChildren();
    if (!list.length) {
      emptyRow(tbody, 6, 'No transactions.');
      return;
    }
    for (const t of list) {
      const tr = el('tr', { 'data-id': t.id, 'data-type': t.type });
      tr.appendChild(cell('Date', when(t.created_at)));
      const typeTd = cell('Type', null);
      typeTd.appendChild(el('span', { class: 'type' }, TYPE_LABELS[t.type] || t.type));
      tr.appendChild(typeTd);
      tr.appendChild(cell('Channel', (t.metadata && t.metadata.channel) || '—'));
      tr.appendChild(cell('Reference', t.reference, 'ref'));
      tr.appendChild(cell('Amount', usd(t.amount_micros), 'num ' + (t.amount_micros < 0 ? 'neg' : 'pos')));
      tr.appendChild(cell('Balance after', usd(t.balance_after_micros), 'num'));
      tbody.appendChild(tr);
    }
  }

  async function loadInvoices() {
    try {
      const list = await api('GET', '/invoices');
      const tbody = $('inv-rows');
      tbody.replaceChildren();
      if (!list || !list.length) {
        emptyRow(tbody, 5, 'No invoices yet. Receipts appear here after each top-up.');
      } else {
        for (const inv of list) {
          const tr = el('tr', { 'data-id': inv.id });
          tr.appendChild(cell('Number', inv.number || inv.id));
          tr.appendChild(cell('Date', when(inv.created_at)));
          tr.appendChild(cell('Status', inv.status));
          tr.appendChild(cell('Amount', minor(inv.amount, inv.currency), 'num'));
          const doc = cell('Document', null);
          if (inv.pdf_url && /^https?:\/\//i.test(inv.pdf_url)) {
            const a = el('a', { href: inv.pdf_url, target: '_blank', rel: 'noopener noreferrer', class: 'pdf' }, 'PDF');
            a.setAttribute('aria-label', 'PDF of invoice ' + (inv.number || inv.id) + ' (opens in a new tab)');
            doc.appendChild(a);
          } else {
            doc.textContent = '—';
          }
          tr.appendChild(doc);
          tbody.appendChild(tr);
        }
      }
      showError('inv-error', null);
    } catch (err) {
      handle('inv-error', err);
    }
  }

  // ---- top-up ------------------------------------------------------------

  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    // randomUUID needs a secure context; getRandomValues does not.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  async function topUp(ev) {
    ev.preventDefault();
    showError('topup-error', null);
    const raw = String($('topup-amount').value || '').trim();
    const value = Number(raw);
    if (!raw || !Number.isFinite(value) || value <= 0) {
      showError('topup-error', 'Enter an amount in US dollars, for example 50.00.');
      $('topup-amount').focus();
      return;
    }
    const cents = Math.round(value * 100);
    const back = location.origin + '/';
    const btn = $('topup-submit');
    btn.disabled = true;
    btn.textContent = 'Starting checkout…';
    try {
      const t = await api('POST', '/balance/top-up', {
        headers: { 'Idempotency-Key': uuid() },
        body: { amount: cents, currency: 'usd', successUrl: back + '?topup=success', cancelUrl: back + '?topup=cancelled' },
      });
      if (!t.checkoutUrl) throw new ApiError('The server returned no checkout URL.', 0, 'bad_response');
      location.assign(t.checkoutUrl);
    } catch (err) {
      handle('topup-error', err);
      btn.disabled = false;
      btn.textContent = 'Continue to payment';
    }
  }

  // ---- wiring ------------------------------------------------------------

  async function signIn(ev) {
    ev.preventDefault();
    showError('signin-error', null);
    const key = $('apikey').value.trim();
    if (!key) {
      showError('signin-error', 'Enter your API key.');
      $('apikey').focus();
      return;
    }
    const btn = $('signin-submit');
    btn.disabled = true;
    try {
      await api('GET', '/balance', { key: key });
      sessionStorage.setItem(KEY_STORAGE, key);
      $('apikey').value = '';
      showApp();
      $('main').focus();
    } catch (err) {
      showError('signin-error', err);
      $('apikey').focus();
    } finally {
      btn.disabled = false;
    }
  }

  function init() {
    $('signin-form').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('refresh').addEventListener('click', loadAll);
    $('topup-form').addEventListener('submit', topUp);
    for (const c of document.querySelectorAll('.chip')) {
      c.addEventListener('click', () => { $('topup-amount').value = Number(c.dataset.amount).toFixed(2); $('topup-amount').focus(); });
    }
    for (const b of document.querySelectorAll('.seg')) {
      b.addEventListener('click', () => { state.days = Number(b.dataset.days); loadUsage(); });
    }
    $('tx-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.tx = { cursors: [null], page: 0, type: $('tx-type').value, channel: $('tx-channel').value.trim(), next: null };
      loadTx();
    });
    $('tx-type').addEventListener('change', () => $('tx-filters').requestSubmit());
    $('tx-clear').addEventListener('click', () => {
      $('tx-type').value = '';
      $('tx-channel').value = '';
      $('tx-filters').requestSubmit();
    });
    $('tx-next').addEventListener('click', () => {
      const tx = state.tx;
      if (!tx.next) return;
      tx.cursors[tx.page + 1] = tx.next;
      tx.page++;
      loadTx();
    });
    $('tx-prev').addEventListener('click', () => {
      const tx = state.tx;
      if (tx.page === 0) return;
      tx.page--;
      loadTx();
    });

    const params = new URLSearchParams(location.search);
    const result = params.get('topup');
    if (result) history.replaceState(null, '', location.pathname);

    if (!apiKey()) {
      showSignin();
      if (result) notice('Sign in again to see your balance.');
      return;
    }
    showApp();
    if (result === 'success') {
      notice('Payment complete: thank you. Your new balance and receipt are shown below.');
      // With Stripe the credit arrives by webhook, a moment after the redirect.
      let n = 0;
      const again = setInterval(() => {
        if (++n >= 4 || !apiKey()) clearInterval(again);
        loadBalance();
        loadInvoices();
      }, 3000);
    } else if (result === 'cancelled') {
      notice('Payment cancelled: nothing was charged.');
    }
  }

  init();
})();
