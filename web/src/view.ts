// What the page shows, as it travels in the address bar: reloading or sharing the URL restores it.
//   ?q=bach&composer=Bach&dataset=smd&track=ID&t=12.5&aspects=dynamics:0.70,articulation:0.30&group=0
//   &compare=WORK&takes=REF,B,C&from=12.5&to=31
// track: the open recording; t: the start (s) of its selected 5-s passage (absent: similar recordings);
// aspects: the slider weights above zero; group=0: every passage instead of the best one per recording.
// compare: the work whose performances the comparison view shows (absent: the search view); takes: the
// performances compared, the reference first (absent: every one with audio); from/to: the passage of the
// reference whose durations are ranked (absent: the whole piece). Track ids in takes cannot hold ','.

export interface View {
  q: string;
  composer: string;
  dataset: string;
  track: string | null;
  start: number | null;
  weights: Map<string, number>;
  grouped: boolean;
  compare: string | null;
  takes: string[];
  passage: { start: number; end: number } | null;
}

export function emptyView(): View {
  return { q: '', composer: '', dataset: '', track: null, start: null, weights: new Map(), grouped: true, compare: null, takes: [], passage: null };
}

// Seconds and weights with two decimals at most, so that a value read back from the URL is the value written.
export const round2 = (x: number): number => Math.round(x * 100) / 100;

export function parseView(search: string): View {
  const p = new URLSearchParams(search);
  const v = emptyView();
  v.q = p.get('q') ?? '';
  v.composer = p.get('composer') ?? '';
  v.dataset = p.get('dataset') ?? '';
  v.track = p.get('track') || null;
  const t = Number(p.get('t') ?? NaN);
  v.start = v.track && p.has('t') && Number.isFinite(t) && t >= 0 ? round2(t) : null;
  for (const item of (p.get('aspects') ?? '').split(',')) {
    const [name, weight] = item.split(/[:=]/);
    const w = Number(weight);
    if (name && Number.isFinite(w) && w > 0) v.weights.set(name, Math.min(1, round2(w)));
  }
  v.grouped = !['0', 'false', 'no', 'off'].includes((p.get('group') ?? '').toLowerCase());
  v.compare = p.get('compare') || null;
  if (v.compare) {
    v.takes = (p.get('takes') ?? '').split(',').filter(Boolean);
    const from = Number(p.get('from') ?? NaN), to = Number(p.get('to') ?? NaN);
    if (Number.isFinite(from) && Number.isFinite(to) && from >= 0 && to > from) v.passage = { start: round2(from), end: round2(to) };
  }
  return v;
}

// ':' and ',' are legal in a query value; leaving them unescaped keeps shared links readable.
const enc = (s: string): string => encodeURIComponent(s).replace(/%3A/gi, ':').replace(/%2C/gi, ',');

export function formatView(v: View): string {
  const parts: string[] = [];
  const add = (key: string, value: string) => parts.push(`${key}=${enc(value)}`);
  if (v.q) add('q', v.q);
  if (v.composer) add('composer', v.composer);
  if (v.dataset) add('dataset', v.dataset);
  if (v.track) {
    add('track', v.track);
    if (v.start !== null) add('t', String(round2(v.start)));
  }
  const weights = [...v.weights].filter(([, w]) => w > 0).map(([name, w]) => `${name}:${w.toFixed(2)}`);
  if (weights.length) add('aspects', weights.join(','));
  if (!v.grouped) add('group', '0');
  if (v.compare) {
    add('compare', v.compare);
    if (v.takes.length) add('takes', v.takes.join(','));
    if (v.passage) {
      add('from', String(round2(v.passage.start)));
      add('to', String(round2(v.passage.end)));
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}
