// ferryd's live page: the daemon's VMs, its migrations with their progress, a drain if there is one,
// and a timeline of one migration's phases and device states drawn from its trace. It reads the JSON
// API once a second (EventSource cannot send the bearer token, so it polls) and builds every element
// from data with textContent, never markup.
'use strict';

const TOKEN_KEY = 'ferry.token';
const POLL_MS = 1000;
const SVG = 'http://www.w3.org/2000/svg';
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

let token = null;
let selected = null;
let timer = null;

// The token comes from the fragment (#token=..., which is never sent to the server) or the form, and is
// kept in this tab's session storage; the fragment is removed from the address bar at once.
function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has('token')) {
    sessionStorage.setItem(TOKEN_KEY, params.get('token'));
    params.delete('token');
  }
  if (params.has('migration')) {
    selected = params.get('migration');
  }
  const rest = params.toString();
  history.replaceState(null, '', location.pathname + location.search + (rest ? '#' + rest : ''));
  token = sessionStorage.getItem(TOKEN_KEY);
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = {Accept: 'application/json'};
  if (token) {
    headers.Authorization = 'Bearer ' + token;
  }
  const response = await fetch(path, {headers, cache: 'no-store'});
  if (response.status === 401) {
    throw new Unauthorized();
  }
  if (response.status === 404 && path === '/v1/drain') {
    return null;
  }
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + response.status);
  }
  return body;
}

function el(tag, text, attributes) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  for (const [name, value] of Object.entries(attributes || {})) {
    node.setAttribute(name, value);
  }
  return node;
}

function bytes(n) {
  if (n < 1024) {
    return n + ' B';
  }
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return value.toFixed(1) + ' ' + units[unit];
}

// µs as ms, or as seconds past ten of them.
function duration(micros) {
  return micros >= 10e6 ? (micros / 1e6).toFixed(1) + ' s' : (micros / 1000).toFixed(1) + ' ms';
}

function setStatus(text, error) {
  const status = document.getElementById('status');
  status.textContent = text;
  status.classList.toggle('error', Boolean(error));
}

function showLogin(message) {
  document.getElementById('login').hidden = false;
  document.getElementById('content').hidden = true;
  document.getElementById('login-error').textContent = message || '';
  setStatus('needs the token', true);
}

// ---- VMs -------------------------------------------------------------------------------------

function renderVms(vms) {
  const body = document.querySelector('#vms tbody');
  body.replaceChildren();
  for (const vm of vms) {
    const row = el('tr', null, {'data-vm': vm.id, 'data-state': vm.state});
    row.append(el('td', vm.id), el('td', vm.state + (vm.hold ? ' (held: ' + vm.hold.reason + ')' : ''), {class: 'state-' + vm.state}),
        el('td', bytes(vm.memoryBytes)), el('td', vm.vcpus), el('td', vm.p2pActive ? 'on' : 'off'));
    const devices = el('td');
    for (const device of vm.devices) {
      devices.append(el('span', device.id + ' ' + device.deviceState,
          {class: 'device', 'data-device': device.id, 'data-device-state': device.deviceState}));
    }
    row.append(devices);
    body.append(row);
  }
  document.getElementById('vms-empty').hidden = vms.length > 0;
}

// ---- migrations ------------------------------------------------------------------------------

function fraction(m) {
  if (m.phase === 'completed') {
    return 1;
  }
  const total = m.transferredBytes + m.remainingBytes;
  return total === 0 ? 0 : Math.min(1, m.transferredBytes / total);
}

function renderMigrations(migrations) {
  const body = document.querySelector('#migrations tbody');
  body.replaceChildren();
  for (const m of migrations) {
    const percent = Math.round(fraction(m) * 1000) / 10;
    const row = el('tr', null, {'data-migration': m.id, 'data-phase': m.phase, 'data-progress': String(percent),
      class: m.id === selected ? 'selected' : ''});
    const id = el('td');
    const link = el('a', m.id, {href: '#migration=' + encodeURIComponent(m.id)});
    link.addEventListener('click', (event) => {
      event.preventDefault();
      select(m.id);
    });
    id.append(link);
    const bar = el('div', null, {class: 'bar', role: 'progressbar', 'aria-valuenow': String(percent), 'aria-valuemin': '0',
      'aria-valuemax': '100'});
    const fill = el('div', null, {class: 'fill phase-' + m.phase});
    fill.style.width = percent + '%';
    bar.append(fill);
    const progress = el('td', null, {class: 'progress'});
    progress.append(bar, el('span', percent.toFixed(1) + '% of ' + bytes(m.transferredBytes + m.remainingBytes)));
    const rate = FINISHED.has(m.phase) ? bytes(m.throughputBytesPerSecond) + '/s'
      : bytes(m.throughputBytesPerSecond) + '/s' + (m.etaMs !== null ? ', eta ' + (m.etaMs / 1000).toFixed(1) + ' s' : '');
    const downtime = m.downtimeMs !== null ? m.downtimeMs + ' ms'
      : (m.expectedDowntimeMs !== null && !FINISHED.has(m.phase) ? 'exp. ' + m.expectedDowntimeMs + ' ms' : '–');
    row.append(id, el('td', m.vm), el('td', m.role), el('td', m.peer),
        el('td', m.phase + (m.error ? ': ' + m.error.code : ''), {class: 'phase phase-' + m.phase}), progress,
        el('td', m.iterations), el('td', rate), el('td', downtime));
    body.append(row);
  }
  document.getElementById('migrations-empty').hidden = migrations.length > 0;
}

function renderDrain(drain) {
  const section = document.getElementById('drain-section');
  section.hidden = !drain;
  if (!drain) {
    return;
  }
  const s = drain.summary;
  document.getElementById('drain').textContent = drain.id + ' to ' + drain.destination + ', at most ' + drain.maxParallel
    + ' at once: ' + drain.state + '. ' + s.total + ' VMs: ' + s.completed + ' completed, ' + s.failed + ' failed, '
    + s.cancelled + ' cancelled, ' + s.migrating + ' migrating, ' + s.pending + ' pending.';
  section.setAttribute('data-drain-state', drain.state);
}

function select(id) {
  selected = id;
  history.replaceState(null, '', location.pathname + '#migration=' + encodeURIComponent(id));
  refresh();
}

// ---- the timeline ----------------------------------------------------------------------------

// A stable colour per name, so a state or phase looks the same on every row and every refresh.
function colour(name) {
  let hash = 0;
  for (const c of name) {
    hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  }
  return 'hsl(' + (hash % 360) + ', 55%, 72%)';
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    node.setAttribute(name, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

// Segments [{name, from, to}] from marks [{name, at}] ending at `end` (µs since the migration began).
function segments(marks, end) {
  const out = [];
  for (let i = 0; i < marks.length; i++) {
    const to = i + 1 < marks.length ? marks[i + 1].at : end;
    out.push({name: marks[i].name, from: marks[i].at, to: Math.max(to, marks[i].at)});
  }
  return out;
}

function renderTimeline(migration, trace) {
  document.getElementById('timeline-section').hidden = false;
  document.getElementById('timeline-id').textContent = migration.id + ' (' + migration.role + ' of ' + migration.vm + ', '
    + migration.phase + ')';
  const end = Math.max(migration.totalTimeMs * 1000,
      ...trace.phases.map((p) => p.atMicros), ...trace.events.map((e) => e.atMicros + e.durationMicros), 1);
  const rows = [];
  rows.push({kind: 'phases', label: 'phases',
    segments: segments(trace.phases.map((p) => ({name: p.phase, at: p.atMicros})), end)});
  // One row per device: the migration's devices (their state now when the trace has nothing yet), in
  // the order the trace first names them.
  const devices = migration.devices.map((d) => d.id);
  for (const event of trace.events) {
    if (!devices.includes(event.device)) {
      devices.push(event.device);
    }
  }
  for (const device of devices) {
    const events = trace.events.filter((e) => e.device === device && e.result === 'ok');
    const now = migration.devices.find((d) => d.id === device);
    const marks = [{name: events.length ? events[0].from : (now ? now.deviceState : '?'), at: 0}];
    for (const e of events) {
      marks.push({name: e.to, at: e.atMicros + e.durationMicros});
    }
    rows.push({kind: 'device', label: device, segments: segments(marks, end), failed: trace.events.filter(
        (e) => e.device === device && e.result !== 'ok')});
  }

  const width = 1000;
  const left = 110;
  const rowHeight = 26;
  const height = rows.length * rowHeight + 30;
  const scale = (t) => left + (width - left - 10) * (t / end);
  const chart = svg('svg', {viewBox: '0 0 ' + width + ' ' + height, width: '100%', role: 'img',
    'aria-label': 'timeline of ' + migration.id});
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    const group = svg('g', row.kind === 'phases' ? {'data-track': 'phases'} : {'data-track': 'device', 'data-device': row.label});
    group.append(svg('text', {x: 4, y: y + 16, class: 'label'}, row.label));
    for (const segment of row.segments) {
      const x = scale(segment.from);
      const w = Math.max(1, scale(segment.to) - x);
      const rect = svg('rect', {x, y, width: w, height: rowHeight - 6, fill: colour(segment.name),
        'data-state': segment.name, 'data-from-us': segment.from, 'data-to-us': segment.to});
      rect.append(svg('title', {}, row.label + ': ' + segment.name + ' from ' + (segment.from / 1000).toFixed(2) + ' ms to '
          + (segment.to / 1000).toFixed(2) + ' ms'));
      group.append(rect);
      if (w > segment.name.length * 6.2 + 6) {
        group.append(svg('text', {x: x + 3, y: y + 14, class: 'segment'}, segment.name));
      }
    }
    for (const failure of row.failed || []) {
      group.append(svg('line', {x1: scale(failure.atMicros), x2: scale(failure.atMicros), y1: y, y2: y + rowHeight - 6,
        class: 'failed', 'data-failed': failure.to}));
    }
    chart.append(group);
  });
  // The time axis.
  const axisY = rows.length * rowHeight + 18;
  for (let k = 0; k <= 4; k++) {
    const t = end * k / 4;
    chart.append(svg('text', {x: scale(t), y: axisY, class: 'axis', 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle'},
        duration(t)));
  }
  // Short phases are slivers on a long timeline: their times are listed below it too.
  const phases = el('ol', null, {class: 'phases'});
  for (const p of migration.phases) {
    if (!FINISHED.has(p.phase)) {
      phases.append(el('li', p.phase + ' ' + (p.durationMs === null ? 'since ' + duration(p.startMs * 1000) : p.durationMs + ' ms'),
          {'data-phase': p.phase}));
    }
  }
  document.getElementById('timeline').replaceChildren(chart, phases);
}

// ---- the loop --------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  try {
    const health = await api('/v1/health');
    document.getElementById('version').textContent = health.version + ' (protocol ' + health.protocolVersion + ')';
    const [vms, migrations, drain] = await Promise.all([api('/v1/vms'), api('/v1/migrations'), api('/v1/drain')]);
    document.getElementById('login').hidden = true;
    document.getElementById('content').hidden = false;
    const list = migrations.migrations;
    if (!selected || !list.some((m) => m.id === selected)) {
      const running = list.find((m) => !FINISHED.has(m.phase));
      selected = running ? running.id : (list.length ? list[0].id : null);
    }
    renderVms(vms.vms);
    renderMigrations(list);
    renderDrain(drain);
    if (selected) {
      const migration = list.find((m) => m.id === selected);
      const trace = await api('/v1/migrations/' + encodeURIComponent(selected) + '/trace');
      renderTimeline(migration, trace);
    } else {
      document.getElementById('timeline-section').hidden = true;
    }
    setStatus('live, ' + new Date().toLocaleTimeString(), false);
    document.body.setAttribute('data-loaded', 'true');
  } catch (e) {
    if (e instanceof Unauthorized) {
      showLogin(token ? 'The daemon refused this token.' : '');
      return;
    }
    setStatus('cannot reach the daemon: ' + e.message, true);
  }
  timer = setTimeout(refresh, POLL_MS);
}

document.getElementById('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  token = document.getElementById('token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  refresh();
});

readFragment();
refresh();
