// souk web UI: one ES module, no build step, no dependencies.  It talks to
// the services through souk-gateway on the same origin (/auth, /catalogs,
// /bookings, /payments, /notifications) and routes on the URL's hash:
//   #/  #/catalogs/<id>  #/bookings/<id>  #/bookings  #/notifications
//   #/manage  #/login  #/register
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
const main = $('#main');
const FINAL = ['CONFIRMED', 'FAILED', 'EXPIRED', 'CANCELLED'];
const OPEN = ['PENDING', 'AWAITING_PAYMENT'];
const TEST_CARDS = [
  ['4242 4242 4242 4242', 'succeeds'],
  ['4000 0000 0000 0002', 'declined'],
  ['4000 0000 0000 9995', 'insufficient funds'],
];

// ---- small helpers ---------------------------------------------------------

const esc = (s) => String(s ?? '').replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function uuid() { // crypto.randomUUID needs a secure context; this does not
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function money(minor, currency) {
  if (minor == null) return '';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'EUR' }).format(minor / 100);
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency || ''}`;
  }
}

const when = (t) => (t ? new Date(t).toLocaleString() : '');
const badge = (s) => `<span class="badge badge-${esc(String(s).toLowerCase())}">${esc(s)}</span>`;

let announced = 0;
function announce(msg) {
  announced = Date.now();
  const s = $('#status');
  s.textContent = '';
  setTimeout(() => { s.textContent = msg; }, 50); // a change is announced even when the text repeats
}

// ---- session: tokens in memory and sessionStorage --------------------------

const session = { access: null, refresh: null, email: null };
try { Object.assign(session, JSON.parse(sessionStorage.getItem('souk.session')) || {}); } catch { /* none */ }

function setSession(tokens, email = session.email) {
  session.access = tokens?.accessToken || null;
  session.refresh = tokens?.refreshToken || null;
  session.email = session.access ? email : null;
  if (session.access) sessionStorage.setItem('souk.session', JSON.stringify(session));
  else sessionStorage.removeItem('souk.session');
  renderNav();
}

function claims() {
  if (!session.access) return null;
  try {
    const p = session.access.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(p + '==='.slice((p.length + 3) % 4)));
  } catch {
    return null;
  }
}
const role = () => claims()?.role || null;
const isAuthor = () => ['AUTHOR', 'ADMIN'].includes(role());
const canManage = (c) => role() === 'ADMIN' || (role() === 'AUTHOR' && c.authorId === claims()?.sub);

function renderNav() {
  const c = claims();
  for (const el of $$('[data-when]')) {
    const w = el.dataset.when;
    el.hidden = w === 'in' ? !c : w === 'out' ? !!c : w === 'author' ? !isAuthor() : false;
  }
  $('#whoami').textContent = c ? `Signed in as ${session.email || c.sub} (${c.role})` : '';
}

// ---- the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
  get slug() { return String(this.problem.type || '').replace('urn:souk:problem:', ''); }
}

let refreshing = null;
function refreshTokens() {
  if (!session.refresh) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const r = await fetch('/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refreshToken: session.refresh }),
      });
      if (!r.ok) throw new Error('refused');
      setSession(await r.json());
      return true;
    } catch {
      setSession(null);
      announce('Your session has ended; please sign in again.');
      return false;
    }
  })().finally(() => { refreshing = null; });
  return refreshing;
}

async function api(path, { method = 'GET', body, headers = {}, retry = true } = {}) {
  const h = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (session.access) h.Authorization = `Bearer ${session.access}`;
  let r;
  try {
    r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'The server could not be reached.' });
  }
  if (r.status === 401 && retry && session.refresh && !path.startsWith('/auth/')) {
    if (await refreshTokens()) return api(path, { method, body, headers, retry: false });
  }
  const text = await r.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: text.slice(0, 200) }; }
  }
  if (!r.ok) throw new ApiError(r.status, data, Number(r.headers.get('Retry-After')) || 0);
  return data;
}

// ---- forms -------------------------------------------------------------------

function field(name, label, type = 'text', attrs = '', hint = '') {
  const id = `f-${name}`;
  const described = `${id}-err${hint ? ` ${id}-hint` : ''}`;
  const control = type === 'textarea'
    ? `<textarea id="${id}" name="${name}" aria-describedby="${described}" ${attrs}></textarea>`
    : `<input id="${id}" name="${name}" type="${type}" aria-describedby="${described}" ${attrs}>`;
  return `<div class="field"><label for="${id}">${esc(label)}</label>${control}
    ${hint ? `<small id="${id}-hint" class="hint">${esc(hint)}</small>` : ''}
    <span class="field-error" id="${id}-err"></span></div>`;
}

function select(name, label, options, value = '') {
  const opts = options.map(([v, t]) => `<option value="${esc(v)}"${v === value ? ' selected' : ''}>${esc(t)}</option>`);
  return `<div class="field"><label for="f-${name}">${esc(label)}</label>
    <select id="f-${name}" name="${name}" aria-describedby="f-${name}-err">${opts.join('')}</select>
    <span class="field-error" id="f-${name}-err"></span></div>`;
}

const formError = '<p class="form-error" role="alert"></p>';

function clearErrors(form) {
  $$('.field-error', form).forEach((e) => { e.textContent = ''; });
  $$('[aria-invalid]', form).forEach((e) => e.removeAttribute('aria-invalid'));
  const box = $('.form-error', form);
  if (box) box.textContent = '';
}

// Shows a problem+json: title and detail above the form, field errors next to the fields.
function showProblem(form, err) {
  clearErrors(form);
  const p = err.problem || {};
  const box = $('.form-error', form);
  const extra = [];
  let first = null;
  for (const fe of p.errors || []) {
    const input = form.elements[fe.field];
    if (input && input.id) {
      input.setAttribute('aria-invalid', 'true');
      $(`#${input.id}-err`, form).textContent = fe.message;
      first ??= input;
    } else {
      extra.push(`${fe.field}: ${fe.message}`);
    }
  }
  let msg = p.title || err.message;
  if (p.detail && p.detail !== p.title) msg += ` — ${p.detail}`;
  if (extra.length) msg += ` (${extra.join('; ')})`;
  if (err.retryAfter && err.status === 429) msg += ` Try again in ${err.retryAfter} s.`;
  if (box) box.textContent = msg;
  (first || box)?.focus?.();
}

// Runs fn on submit with the form's values; errors go next to the fields.
function onSubmit(form, fn) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const btn = $('button[type=submit]', form);
    if (btn) btn.disabled = true;
    try {
      await fn(Object.fromEntries(new FormData(form)), form);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem(form, e);
    } finally {
      if (btn) btn.disabled = false;
    }
  });
}

// ---- router ------------------------------------------------------------------

let gen = 0; // bumped on every navigation; loops of an old view stop
const live = () => { const g = gen; return () => g === gen; }; // false once the user moved on
let firstRoute = true;

const routes = [
  [/^\/?$/, viewCatalogs],
  [/^\/catalogs\/([\w-]+)$/, viewCatalog],
  [/^\/bookings$/, viewMyBookings],
  [/^\/bookings\/([\w-]+)$/, viewBooking],
  [/^\/notifications$/, viewNotifications],
  [/^\/manage$/, viewManage],
  [/^\/login$/, viewLogin],
  [/^\/register$/, viewRegister],
];

async function route() {
  gen++;
  const current = live();
  if (Date.now() - announced > 1500) $('#status').textContent = ''; // an old message does not linger
  const [path, query] = (location.hash.replace(/^#/, '') || '/').split('?');
  const params = new URLSearchParams(query || '');
  const hit = routes.find(([re]) => re.test(path));
  $$('nav a').forEach((a) => a.removeAttribute('aria-current'));
  $$(`nav a[href="#${path}"]`).forEach((a) => a.setAttribute('aria-current', 'page'));
  try {
    if (!hit) main.innerHTML = '<h1 tabindex="-1">Not found</h1><p><a href="#/">Back to the catalogs</a></p>';
    else await hit[1](params, ...path.match(hit[0]).slice(1));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (!current()) return;
    if (e.status === 401) {
      setSession(null);
      needLogin();
      return;
    }
    const p = e.problem;
    main.innerHTML = `<h1 tabindex="-1">${esc(p.title || 'Error')}</h1><p class="form-error">${esc(p.detail || e.message)}</p>
      <p><a href="#/">Back to the catalogs</a></p>`;
  }
  if (!firstRoute && current()) $('h1', main)?.focus();
  firstRoute = false;
}

function needLogin() {
  if (session.access) return false;
  sessionStorage.setItem('souk.after', location.hash);
  location.hash = '#/login';
  return true;
}

// ---- catalogs ----------------------------------------------------------------

async function viewCatalogs(q) {
  const alive = live();
  const f = Object.fromEntries(q);
  const size = 10;
  const page = Number(f.page || 0);
  main.innerHTML = `<h1 tabindex="-1">Catalogs</h1>
    <form id="filters" class="filters" aria-label="Filter catalogs">
      ${field('priceFrom', 'Price from', 'number', 'min="0" step="0.01" inputmode="decimal"')}
      ${field('priceTo', 'Price to', 'number', 'min="0" step="0.01" inputmode="decimal"')}
      ${select('status', 'Status', [['', 'Any'], ['ACTIVE', 'Active'], ['SOLD_OUT', 'Sold out'], ['DEACTIVATED', 'Deactivated']], f.status || '')}
      ${field('dateFrom', 'Date from', 'date')}
      ${field('dateTo', 'Date to', 'date')}
      ${select('sort', 'Sort by', [['dateOfEvent,asc', 'Date, soonest first'], ['dateOfEvent,desc', 'Date, latest first'],
    ['price,asc', 'Price, lowest first'], ['price,desc', 'Price, highest first'], ['createdAt,desc', 'Newest']], f.sort || 'dateOfEvent,asc')}
      <div class="actions"><button type="submit">Apply filters</button>
        <a href="#/" class="button secondary">Reset</a></div>
      ${formError}
    </form>
    <div id="results" aria-live="polite"><p>Loading…</p></div>`;
  const form = $('#filters');
  for (const k of ['priceFrom', 'priceTo', 'dateFrom', 'dateTo']) if (f[k]) form.elements[k].value = f[k];
  onSubmit(form, async (v) => {
    const p = new URLSearchParams(Object.entries(v).filter(([, x]) => x !== ''));
    location.hash = `#/?${p}`;
  });
  const a = new URLSearchParams({ page, size, sort: f.sort || 'dateOfEvent,asc' });
  for (const k of ['priceFrom', 'priceTo']) if (f[k]) a.set(k, Math.round(Number(f[k]) * 100));
  for (const k of ['status', 'dateFrom', 'dateTo']) if (f[k]) a.set(k, f[k]);
  let data;
  try {
    data = await api(`/catalogs?${a}`);
  } catch (e) {
    if (!(e instanceof ApiError) || !alive()) throw e;
    showProblem(form, e);
    $('#results').innerHTML = '';
    return;
  }
  if (!alive()) return;
  const items = data.content || [];
  const more = (p) => { const n = new URLSearchParams(q); n.set('page', p); return `#/?${n}`; };
  $('#results').innerHTML = `<p>${data.totalElements ?? items.length} catalog(s).</p>
    <ul class="cards">${items.map((c) => `<li class="card">
      <h2><a href="#/catalogs/${esc(c.catalogId)}">${esc(c.title)}</a></h2>
      <p>${badge(c.status)} ${esc(when(c.dateOfEvent))}</p>
      <p><strong>${esc(money(c.price, c.currency))}</strong> ·
        <span class="avail">${esc(c.availableTickets)} of ${esc(c.totalTickets)} available</span></p>
    </li>`).join('')}</ul>
    <nav class="pager" aria-label="Pages">
      ${page > 0 ? `<a href="${more(page - 1)}">Previous page</a>` : ''}
      <span>Page ${page + 1} of ${Math.max(1, data.totalPages || 1)}</span>
      ${page + 1 < (data.totalPages || 0) ? `<a href="${more(page + 1)}">Next page</a>` : ''}
    </nav>`;
}

async function viewCatalog(q, id) {
  const alive = live();
  const [c, tickets] = await Promise.all([api(`/catalogs/${id}`), api(`/catalogs/${id}/tickets`)]);
  if (!alive()) return;
  const list = Array.isArray(tickets) ? tickets : tickets?.content || [];
  const bookable = c.status === 'ACTIVE' && session.access;
  main.innerHTML = `<p><a href="#/">← All catalogs</a></p>
    <h1 tabindex="-1">${esc(c.title)}</h1>
    <p>${badge(c.status)} ${esc(when(c.dateOfEvent))}</p>
    ${c.description ? `<p class="desc">${esc(c.description)}</p>` : ''}
    <p><strong>${esc(money(c.price, c.currency))}</strong> ·
      <span class="avail">${esc(c.availableTickets)} of ${esc(c.totalTickets)} tickets available</span></p>
    <div class="actions" id="cat-actions">
      ${bookable ? `<button type="button" id="book-any"${c.availableTickets ? '' : ' disabled'}>Book any ticket</button>` : ''}
      ${!session.access ? '<a class="button" href="#/login" id="signin-to-book">Sign in to book</a>' : ''}
      ${session.access && canManage(c) && c.status !== 'DEACTIVATED' ? '<button type="button" class="danger" id="deactivate">Deactivate catalog</button>' : ''}
    </div>
    <form id="book-form">${formError}</form>
    <h2>Tickets</h2>
    <table class="tickets"><caption class="sr-only">Tickets of ${esc(c.title)}</caption>
      <thead><tr><th scope="col">Ticket</th><th scope="col">Status</th><th scope="col"><span class="sr-only">Action</span></th></tr></thead>
      <tbody>${list.map((t) => `<tr><td>#${esc(t.number)}</td><td>${badge(t.status)}</td><td>${
    bookable && t.status === 'AVAILABLE' ? `<button type="button" class="small" data-ticket="${esc(t.ticketId)}" aria-label="Book ticket ${esc(t.number)}">Book</button>` : ''}</td></tr>`).join('')}</tbody>
    </table>`;
  if (!session.access) $('#signin-to-book').addEventListener('click', () => sessionStorage.setItem('souk.after', location.hash));
  const form = $('#book-form');
  const book = async (body) => {
    try {
      const b = await api('/bookings', { method: 'POST', body, headers: { 'Idempotency-Key': uuid() } });
      announce('Booking started: the ticket is being held for you.');
      location.hash = `#/bookings/${b.bookingId}`;
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem(form, e);
    }
  };
  $('#book-any')?.addEventListener('click', () => book({ catalogId: c.catalogId }));
  $$('[data-ticket]').forEach((b) => b.addEventListener('click', () => book({ ticketId: b.dataset.ticket })));
  $('#deactivate')?.addEventListener('click', async () => {
    if (!confirm(`Deactivate "${c.title}"? It is taken off sale.`)) return;
    try {
      await api(`/catalogs/${id}/deactivate`, { method: 'PATCH' });
      announce('The catalog is deactivated.');
      route();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem(form, e);
    }
  });
}

// ---- one booking: live status, countdown, payment ----------------------------

async function viewBooking(q, id) {
  if (needLogin()) return;
  const alive = live();
  const year = new Date().getFullYear() + 3;
  main.innerHTML = `<p><a href="#/bookings">← My bookings</a></p>
    <h1 tabindex="-1">Booking</h1>
    <p class="big">Status: <span id="booking-status" role="status" aria-live="polite">…</span></p>
    <p id="countdown" class="countdown" role="timer" aria-live="off" hidden></p>
    <p id="outcome" aria-live="polite"></p>
    <dl id="booking-info" class="info"></dl>
    <section id="pay" hidden aria-labelledby="pay-h">
      <h2 id="pay-h">Pay with a test card</h2>
      <p>No real money moves. Test cards:</p>
      <ul class="test-cards">${TEST_CARDS.map(([n, what]) => `<li><button type="button" class="small secondary" data-card="${n}"
        aria-label="Use test card ${n} (${what})">Use</button> <code>${n}</code> — ${what}</li>`).join('')}</ul>
      <form id="pay-form" novalidate>
        ${field('card', 'Card number', 'text', `inputmode="numeric" autocomplete="cc-number" value="${TEST_CARDS[0][0]}" required`)}
        <div class="row">
          ${field('expMonth', 'Expiry month', 'number', 'min="1" max="12" value="12" required')}
          ${field('expYear', 'Expiry year', 'number', `min="2000" max="9999" value="${year}" required`)}
          ${field('cvc', 'CVC', 'text', 'inputmode="numeric" autocomplete="cc-csc" value="123" maxlength="4" required')}
        </div>
        <div class="actions"><button type="submit" id="pay-button">Pay</button></div>
        ${formError}
      </form>
    </section>
    <div class="actions"><button type="button" id="cancel" class="danger" hidden>Cancel booking</button></div>`;
  const form = $('#pay-form');
  let b = null;
  let shown = null;

  const render = () => {
    if (b.status !== shown) {
      if (shown) announce(`Booking ${b.status}`);
      shown = b.status;
      $('#booking-status').innerHTML = badge(b.status);
      const o = {
        CONFIRMED: 'Paid — your ticket is confirmed. The confirmation email is in My notifications.',
        EXPIRED: 'The hold expired before the payment; the ticket was released.',
        FAILED: `The booking failed${b.reason ? `: ${b.reason}` : ''}.`,
        CANCELLED: `The booking was cancelled${b.refunded ? ' and refunded' : ''}.`,
        PENDING: 'Reserving your ticket…',
        AWAITING_PAYMENT: 'Your ticket is held; pay before the hold ends.',
      };
      $('#outcome').textContent = o[b.status] || '';
    }
    $('#pay').hidden = !OPEN.includes(b.status);
    $('#cancel').hidden = !(OPEN.includes(b.status) || b.status === 'CONFIRMED');
    $('#booking-info').innerHTML = `<dt>Booking</dt><dd><code>${esc(b.bookingId)}</code></dd>
      <dt>Catalog</dt><dd><a href="#/catalogs/${esc(b.catalogId)}" class="cat-title">${esc(titles.get(`${b.catalogId}!`) || 'the catalog')}</a></dd>
      <dt>Ticket</dt><dd>${b.ticketId ? `<code>${esc(b.ticketId)}</code>` : 'being chosen…'}</dd>
      ${b.amount != null ? `<dt>Amount</dt><dd>${esc(money(b.amount, b.currency))}</dd>` : ''}
      <dt>Created</dt><dd>${esc(when(b.createdAt))}</dd>
      ${b.reason ? `<dt>Reason</dt><dd>${esc(b.reason)}</dd>` : ''}`;
    tick();
  };
  const tick = () => {
    const cd = $('#countdown');
    if (!b || !OPEN.includes(b.status) || !b.expiresAt) { cd.hidden = true; return; }
    const left = Math.max(0, Math.round((Date.parse(b.expiresAt) - Date.now()) / 1000));
    cd.hidden = false;
    cd.textContent = `Hold ends in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
  };

  b = await api(`/bookings/${id}`);
  titles.set(`${b.catalogId}!`, await catalogTitle(b.catalogId)); // "!": the resolved title
  if (!alive()) return;
  render();
  const timer = setInterval(() => (alive() ? tick() : clearInterval(timer)), 1000);
  (async () => { // poll every second until the booking is final
    while (alive() && !FINAL.includes(b.status)) {
      await sleep(1000);
      if (!alive()) break;
      try {
        b = await api(`/bookings/${id}`);
        if (alive()) render();
      } catch (e) {
        if (!(e instanceof ApiError) || e.status === 401) break;
      }
    }
  })();

  $$('[data-card]').forEach((btn) => btn.addEventListener('click', () => {
    form.elements.card.value = btn.dataset.card;
    form.elements.card.focus();
  }));
  onSubmit(form, async (v) => {
    const body = { card: v.card, expMonth: Number(v.expMonth), expYear: Number(v.expYear), cvc: v.cvc };
    for (let i = 0; ; i++) {
      try {
        const p = await api(`/payments/${id}/pay`, { method: 'POST', body });
        announce(p.status === 'SUCCEEDED' ? 'Payment succeeded; confirming the booking…'
          : `Payment ${p.status.toLowerCase()}${p.reason ? `: ${p.reason}` : ''}`);
        $('.form-error', form).textContent = p.status === 'SUCCEEDED' ? '' : `Payment ${p.status}${p.reason ? `: ${p.reason}` : ''}`;
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || e.slug !== 'payment-not-ready' || i >= 30 || !alive()) throw e;
        $('.form-error', form).textContent = 'The payment is being prepared; retrying…';
        await sleep(1000 * Math.min(e.retryAfter || 1, 3));
      }
    }
  });
  $('#cancel').addEventListener('click', async () => {
    if (!confirm('Cancel this booking?')) return;
    try {
      b = await api(`/bookings/${id}/cancel`, { method: 'POST' });
      render();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem(form, e);
    }
  });
}

// ---- my bookings and notifications ------------------------------------------

const titles = new Map();
async function catalogTitle(id) {
  if (!titles.has(id)) titles.set(id, api(`/catalogs/${id}`).then((c) => c.title, () => 'a catalog'));
  return titles.get(id);
}

async function viewMyBookings(q) {
  if (needLogin()) return;
  const alive = live();
  const page = Number(q.get('page') || 0);
  const data = await api(`/bookings/my?page=${page}&size=20`);
  const items = data.content || [];
  const names = await Promise.all(items.map((b) => catalogTitle(b.catalogId)));
  if (!alive()) return;
  main.innerHTML = `<h1 tabindex="-1">My bookings</h1>
    <form id="bk-form">${formError}</form>
    ${items.length ? '' : '<p>No bookings yet. <a href="#/">Find a course</a>.</p>'}
    <ul class="cards">${items.map((b, i) => `<li class="card">
      <h2><a href="#/bookings/${esc(b.bookingId)}">${esc(names[i])}</a></h2>
      <p>${badge(b.status)} ${b.amount != null ? esc(money(b.amount, b.currency)) : ''} · booked ${esc(when(b.createdAt))}</p>
      ${b.reason ? `<p>${esc(b.reason)}</p>` : ''}
      <div class="actions"><a class="button secondary" href="#/bookings/${esc(b.bookingId)}">${OPEN.includes(b.status) ? 'Pay' : 'Details'}</a>
      ${OPEN.includes(b.status) || b.status === 'CONFIRMED' ? `<button type="button" class="danger" data-cancel="${esc(b.bookingId)}">Cancel</button>` : ''}</div>
    </li>`).join('')}</ul>
    <nav class="pager" aria-label="Pages">
      ${page > 0 ? `<a href="#/bookings?page=${page - 1}">Previous page</a>` : ''}
      ${page + 1 < (data.totalPages || 0) ? `<a href="#/bookings?page=${page + 1}">Next page</a>` : ''}
    </nav>`;
  $$('[data-cancel]').forEach((btn) => btn.addEventListener('click', async () => {
    if (!confirm('Cancel this booking?')) return;
    try {
      await api(`/bookings/${btn.dataset.cancel}/cancel`, { method: 'POST' });
      announce('The booking is cancelled.');
      route();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem($('#bk-form'), e);
    }
  }));
}

async function viewNotifications() {
  if (needLogin()) return;
  const alive = live();
  main.innerHTML = `<h1 tabindex="-1">My notifications</h1>
    <p>The emails souk sent you, newest first. <button type="button" id="reload" class="small secondary">Refresh</button></p>
    <div id="mails"><p>Loading…</p></div>`;
  let last = '';
  const load = async () => {
    const data = await api('/notifications/my?size=50');
    const items = data.content || [];
    const key = JSON.stringify(items);
    if (key === last || !alive()) return;
    last = key;
    $('#mails').innerHTML = items.length ? `<ul class="cards mails">${items.map((n) => `<li class="card mail">
      <h2>${esc(n.subject || n.type)}</h2>
      <p>${badge(n.state)} ${esc(n.type)} · ${esc(when(n.sentAt || n.createdAt))}${n.to ? ` · to ${esc(n.to)}` : ''}</p>
      <pre class="mail-body">${esc(n.text)}</pre></li>`).join('')}</ul>` : '<p>No notifications yet.</p>';
  };
  await load();
  $('#reload').addEventListener('click', () => load().then(() => announce('Notifications refreshed.')));
  (async () => {
    while (alive()) {
      await sleep(3000);
      if (alive()) await load().catch(() => {});
    }
  })();
}

// ---- authors and admins: create and deactivate catalogs ---------------------

async function viewManage() {
  if (needLogin()) return;
  if (!isAuthor()) {
    main.innerHTML = '<h1 tabindex="-1">Manage catalogs</h1><p>Only authors and admins create catalogs.</p>';
    return;
  }
  const alive = live();
  const data = await api('/catalogs?size=100&sort=createdAt,desc');
  if (!alive()) return;
  const mine = (data.content || []).filter(canManage);
  main.innerHTML = `<h1 tabindex="-1">Manage catalogs</h1>
    <form id="create-form" class="panel" aria-labelledby="create-h">
      <h2 id="create-h">New catalog</h2>
      ${field('title', 'Title', 'text', 'required minlength="5" maxlength="80"')}
      ${field('description', 'Description', 'textarea', 'maxlength="2000" rows="3"')}
      <div class="row">
        ${field('price', 'Price', 'number', 'required min="0.01" step="0.01" inputmode="decimal"', 'per ticket, e.g. 49.00')}
        ${field('currency', 'Currency', 'text', 'required value="EUR" maxlength="3" autocapitalize="characters"')}
      </div>
      <div class="row">
        ${field('dateOfEvent', 'Date of the event', 'datetime-local', 'required')}
        ${field('numberOfTickets', 'Number of tickets', 'number', 'required min="1" max="50" value="10"')}
      </div>
      <div class="actions"><button type="submit">Create catalog</button></div>
      ${formError}
    </form>
    <h2>${role() === 'ADMIN' ? 'All catalogs' : 'Your catalogs'}</h2>
    <form id="list-form">${formError}</form>
    <ul class="cards">${mine.map((c) => `<li class="card">
      <h3><a href="#/catalogs/${esc(c.catalogId)}">${esc(c.title)}</a></h3>
      <p>${badge(c.status)} ${esc(when(c.dateOfEvent))} · ${esc(c.availableTickets)} of ${esc(c.totalTickets)} available</p>
      ${c.status !== 'DEACTIVATED' ? `<button type="button" class="danger small" data-deactivate="${esc(c.catalogId)}"
        aria-label="Deactivate ${esc(c.title)}">Deactivate</button>` : ''}</li>`).join('') || '<li>None yet.</li>'}</ul>`;
  onSubmit($('#create-form'), async (v) => {
    const d = v.dateOfEvent ? new Date(v.dateOfEvent) : null;
    const body = {
      title: v.title.trim(),
      description: v.description,
      price: Math.round(Number(v.price) * 100),
      currency: v.currency.trim().toUpperCase(),
      dateOfEvent: d && !isNaN(d) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '',
      numberOfTickets: Number(v.numberOfTickets),
    };
    const c = await api('/catalogs', { method: 'POST', body });
    announce(`Catalog "${c.title}" created.`);
    location.hash = `#/catalogs/${c.catalogId}`;
  });
  $$('[data-deactivate]').forEach((btn) => btn.addEventListener('click', async () => {
    try {
      await api(`/catalogs/${btn.dataset.deactivate}/deactivate`, { method: 'PATCH' });
      announce('The catalog is deactivated.');
      route();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      showProblem($('#list-form'), e);
    }
  }));
}

// ---- sign in, register, sign out ----------------------------------------------

function afterLogin() {
  const to = sessionStorage.getItem('souk.after') || '#/';
  sessionStorage.removeItem('souk.after');
  location.hash = to;
}

async function login(email, password) {
  setSession(await api('/auth/login', { method: 'POST', body: { email, password } }), email);
  announce(`Signed in as ${email}.`);
  afterLogin();
}

function viewLogin() {
  main.innerHTML = `<h1 tabindex="-1">Sign in</h1>
    <form id="login-form" class="panel narrow">
      ${field('email', 'Email', 'email', 'required autocomplete="username"')}
      ${field('password', 'Password', 'password', 'required autocomplete="current-password"')}
      <div class="actions"><button type="submit">Sign in</button></div>
      ${formError}
      <p>New here? <a href="#/register">Create an account</a>.</p>
    </form>`;
  onSubmit($('#login-form'), (v) => login(v.email.trim(), v.password));
}

function viewRegister() {
  main.innerHTML = `<h1 tabindex="-1">Create an account</h1>
    <form id="register-form" class="panel narrow" novalidate>
      ${field('email', 'Email', 'email', 'required autocomplete="email"')}
      ${field('password', 'Password', 'password', 'required minlength="10" autocomplete="new-password"', 'at least 10 characters, not your email')}
      ${field('fullName', 'Full name', 'text', 'required autocomplete="name"')}
      ${field('phone', 'Phone (optional)', 'tel', 'autocomplete="tel"', 'international format, e.g. +4915112345678')}
      <div class="actions"><button type="submit">Register</button></div>
      ${formError}
      <p>Have an account? <a href="#/login">Sign in</a>.</p>
    </form>`;
  onSubmit($('#register-form'), async (v) => {
    const body = { email: v.email.trim(), password: v.password, fullName: v.fullName.trim() };
    if (v.phone.trim()) body.phone = v.phone.trim();
    await api('/auth/register', { method: 'POST', body });
    await login(body.email, body.password);
  });
}

$('#logout').addEventListener('click', () => {
  const refreshToken = session.refresh;
  setSession(null);
  if (refreshToken) api('/auth/logout', { method: 'POST', body: { refreshToken } }).catch(() => {});
  announce('Signed out.');
  location.hash = '#/';
});

window.addEventListener('hashchange', route);
renderNav();
route();
