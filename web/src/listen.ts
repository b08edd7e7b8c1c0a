// The listening test: the server draws a triplet (a reference passage and two candidates, /api/listen/next);
// the listener plays the three 5-s passages and says which candidate is closer to the reference, overall or
// in the aspect asked; the answer goes back with the listener id (kept in localStorage) and the time taken
// (/api/listen/judgements). The sampler's parameters (aspect, sampler, geometries, seed, k) come from this
// page's URL, so a link such as /listen.html?aspect=dynamics&seed=3 sets up a session.
import { listenApi, type ListenTriplet, type Passage } from './api';
import { $, showError } from './ui';

type Key = 'anchor' | 'a' | 'b';
const KEYS: Key[] = ['anchor', 'a', 'b'];
const LISTENER_KEY = 'mess.listener';
const LISTENER_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const state = {
  triplet: null as ListenTriplet | null,
  judged: 0,
  session: 0,    // answers given on this page
  skipped: 0,    // triplets skipped on this page: the next draw moves past them
  played: new Set<Key>(),
  playing: null as Key | null,
  shownAt: 0,
  busy: false,
};
const audio = () => $<HTMLAudioElement>('audio');

function listener(): string {
  return $<HTMLInputElement>('listener').value.trim();
}

function initListener(): void {
  const input = $<HTMLInputElement>('listener');
  let id = localStorage.getItem(LISTENER_KEY) ?? '';
  if (!LISTENER_RE.test(id)) {
    id = `listener-${Math.random().toString(36).slice(2, 8)}`;
    localStorage.setItem(LISTENER_KEY, id);
  }
  input.value = id;
  input.addEventListener('change', () => {
    if (!LISTENER_RE.test(listener())) {
      showError('A listener id is 1 to 64 letters, digits, "_", "." or "-".');
      return;
    }
    showError(null);
    localStorage.setItem(LISTENER_KEY, listener());
    state.skipped = 0;
    void loadNext();
  });
}

// The sampler's parameters from the page's URL, plus listener and draw.
function nextParams(): URLSearchParams {
  const own = new URLSearchParams(location.search);
  const p = new URLSearchParams();
  for (const name of ['aspect', 'sampler', 'geometries', 'seed', 'k']) {
    const v = own.get(name);
    if (v) p.set(name, v);
  }
  p.set('listener', listener());
  p.set('draw', String(state.judged + state.skipped));
  return p;
}

function showProgress(): void {
  $('progress').textContent = `${state.judged} judged by ${listener()}` + (state.session ? ` · ${state.session} in this session` : '');
  document.body.dataset.judged = String(state.judged);
}

function canAnswer(): boolean {
  return !!state.triplet && !state.busy && KEYS.every((k) => state.played.has(k));
}

function refreshButtons(): void {
  for (const k of ['a', 'b'] as const) $<HTMLButtonElement>(`choose-${k}`).disabled = !canAnswer();
  $<HTMLButtonElement>('skip').disabled = state.busy;
  const missing = KEYS.filter((k) => !state.played.has(k)).map((k) => (k === 'anchor' ? 'the reference' : k.toUpperCase()));
  $('status').textContent = !state.triplet ? '' : missing.length ? `Play ${missing.join(', ')} to answer.` : 'Which is closer?';
  for (const k of KEYS) {
    $(`play-${k}`).textContent = state.playing === k ? '■ Stop' : `▶ Play ${k === 'anchor' ? 'reference' : k.toUpperCase()}`;
    $(`play-${k}`).setAttribute('aria-pressed', String(state.playing === k));
    $(`passage-${k}`).classList.toggle('heard', state.played.has(k));
  }
}

function stop(): void {
  audio().pause();
  state.playing = null;
  refreshButtons();
}

async function play(key: Key): Promise<void> {
  const t = state.triplet;
  if (!t) return;
  if (state.playing === key) return stop();
  const p: Passage = t[key];
  if (!p.audio_url) {
    showError(`The audio of ${p.track_id} is not on this server.`);
    return;
  }
  const el = audio();
  el.pause();
  if (el.dataset.src !== p.audio_url) {
    el.dataset.src = p.audio_url;
    el.src = p.audio_url;
    await new Promise<void>((resolve, reject) => {
      el.addEventListener('loadedmetadata', () => resolve(), { once: true });
      el.addEventListener('error', () => reject(new Error(`cannot play ${p.track_id}`)), { once: true });
    });
  }
  el.currentTime = p.start_sec;
  state.playing = key;
  state.played.add(key);
  refreshButtons();
  await el.play();
}

// Stops at the passage's end and moves the playing passage's meter.
function onTime(): void {
  const key = state.playing, t = state.triplet;
  if (!key || !t) return;
  const p = t[key], el = audio();
  const done = Math.min(1, Math.max(0, (el.currentTime - p.start_sec) / (p.end_sec - p.start_sec)));
  $(`meter-${key}`).style.width = `${(done * 100).toFixed(1)}%`;
  if (el.currentTime >= p.end_sec || el.ended) stop();
}

function show(t: ListenTriplet): void {
  state.triplet = t;
  state.played.clear();
  state.playing = null;
  state.judged = t.progress.judged;
  state.shownAt = performance.now();
  $('question').textContent = t.question.text;
  for (const k of KEYS) {
    const p = t[k];
    $(`span-${k}`).textContent = `${(p.end_sec - p.start_sec).toFixed(1)}-s passage`;
    $(`meter-${k}`).style.width = '0%';
    $(`passage-${k}`).dataset.id = p.id;
  }
  $<HTMLAnchorElement>('export').href = `/api/listen/export?listener=${encodeURIComponent(listener())}`;
  showProgress();
  refreshButtons();
  $('play-anchor').focus();
}

async function loadNext(): Promise<void> {
  if (!LISTENER_RE.test(listener())) return;
  stop();
  state.busy = true;
  document.body.dataset.listen = 'loading';
  try {
    show(await listenApi.next(nextParams()));
    showError(null);
  } catch (e) {
    state.triplet = null;
    $('question').textContent = 'No triplet to judge';
    showError(`No triplet: ${(e as Error).message}`);
  } finally {
    state.busy = false;
    refreshButtons();
    document.body.dataset.listen = 'ready';
  }
}

async function answer(choice: 'a' | 'b'): Promise<void> {
  const t = state.triplet;
  if (!t || !canAnswer()) return;
  stop();
  state.busy = true;
  refreshButtons();
  try {
    const stored = await listenApi.judge({
      anchor: t.anchor.id, a: t.a.id, b: t.b.id, choice, aspect: t.question.aspect, listener: listener(),
      time_ms: Math.round(performance.now() - state.shownAt), sampler: t.sampler.label,
    });
    state.judged = stored.progress.judged;
    state.session += 1;
    showProgress();
    state.busy = false;
    await loadNext();
  } catch (e) {
    state.busy = false;
    showError(`The answer was not stored: ${(e as Error).message}`);
    refreshButtons();
  }
}

function onKey(e: KeyboardEvent): void {
  if (e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === ' ' && e.target instanceof HTMLButtonElement) return;  // the focused button's own press
  const actions: Record<string, () => void> = {
    r: () => void play('anchor'), '0': () => void play('anchor'), '1': () => void play('a'), '2': () => void play('b'),
    a: () => void answer('a'), arrowleft: () => void answer('a'), b: () => void answer('b'), arrowright: () => void answer('b'),
    s: () => void skip(), ' ': () => stop(),
  };
  const act = actions[e.key.toLowerCase()];
  if (!act) return;
  e.preventDefault();
  act();
}

function skip(): void {
  if (state.busy) return;
  state.skipped += 1;
  void loadNext();
}

function start(): void {
  initListener();
  for (const k of KEYS) $(`play-${k}`).addEventListener('click', () => void play(k).catch((e) => showError((e as Error).message)));
  $('choose-a').addEventListener('click', () => void answer('a'));
  $('choose-b').addEventListener('click', () => void answer('b'));
  $('skip').addEventListener('click', skip);
  audio().addEventListener('timeupdate', onTime);
  audio().addEventListener('ended', () => stop());
  document.addEventListener('keydown', onKey);
  void loadNext();
}

start();
