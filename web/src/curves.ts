// The comparison view's chart: tempo and loudness curves of every performance on the reference's time
// axis (SVG, two panels with their axes), the selected passage shaded and the shared cursor. A click on a
// panel asks to move every player there (seek); a drag chooses a passage (select).
import { clock } from './ui';

export interface Series {
  track: string;
  label: string;
  color: string;
  tempo: number[];     // × the reference (> 1: faster), one per time
  loudness: number[];  // dBFS at the aligned moment, one per time
}

export interface ChartData {
  times: number[];  // seconds of the reference, increasing
  series: Series[];
}

interface Panel {
  kind: 'tempo' | 'loudness';
  title: string;
  top: number;
  lo: number;
  hi: number;
  ticks: number[];
  format: (v: number) => string;
}

const SVG = 'http://www.w3.org/2000/svg';
const PANEL_HEIGHT = 130, GAP = 34, MARGIN = { left: 58, right: 14, top: 22, bottom: 36 };

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, parent?: Element): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  parent?.append(e);
  return e;
}

// About `count` round tick values covering [lo, hi].
export function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function extent(values: number[], include: number[]): [number, number] {
  const finite = values.filter(Number.isFinite).concat(include);
  return [Math.min(...finite), Math.max(...finite)];
}

// The y ranges: tempo around 1 (the reference), loudness over the 60 dB below the loudest moment.
function panels(data: ChartData): Panel[] {
  const tempo = data.series.flatMap((s) => s.tempo), loud = data.series.flatMap((s) => s.loudness);
  let [tlo, thi] = extent(tempo, [1]);
  const tpad = Math.max(0.05, (thi - tlo) * 0.08);
  [tlo, thi] = [Math.max(0, tlo - tpad), thi + tpad];
  let [llo, lhi] = extent(loud, []);
  llo = Math.max(llo, lhi - 60);
  [llo, lhi] = [llo - 3, Math.min(0, lhi + 3)];
  const second = MARGIN.top + PANEL_HEIGHT + GAP;
  return [
    { kind: 'tempo', title: 'Tempo (× the reference; above 1: faster)', top: MARGIN.top, lo: tlo, hi: thi, ticks: niceTicks(tlo, thi, 4), format: (v) => `×${+v.toFixed(2)}` },
    { kind: 'loudness', title: 'Loudness (dBFS, 100-ms RMS)', top: second, lo: llo, hi: lhi, ticks: niceTicks(llo, lhi, 4), format: (v) => `${Math.round(v)}`.replace('-', '−') },
  ];
}

export class CurvesChart {
  private svg: SVGSVGElement;
  private data: ChartData | null = null;
  private width = 0;
  private t0 = 0;
  private t1 = 1;
  private cursor: SVGLineElement | null = null;
  private shade: SVGRectElement[] = [];
  private drag: { x: number; rect: SVGRectElement } | null = null;
  private passage: { start: number; end: number } | null = null;

  constructor(host: HTMLElement, private handlers: { seek: (t: number) => void; select: (start: number, end: number) => void }) {
    this.svg = el('svg', { class: 'curves', role: 'img' });
    host.replaceChildren(this.svg);
    this.svg.addEventListener('pointerdown', (e) => this.down(e));
    this.svg.addEventListener('pointermove', (e) => this.move(e));
    this.svg.addEventListener('pointerup', (e) => this.up(e));
    new ResizeObserver(() => {
      if (this.data && Math.abs(host.clientWidth - this.width) > 1) this.draw(this.data, this.passage);
    }).observe(host);
  }

  private x(t: number): number {
    return MARGIN.left + ((t - this.t0) / (this.t1 - this.t0 || 1)) * (this.width - MARGIN.left - MARGIN.right);
  }
  private time(clientX: number): number {
    const box = this.svg.getBoundingClientRect();
    const f = (clientX - box.left - MARGIN.left) / (this.width - MARGIN.left - MARGIN.right);
    return this.t0 + Math.min(1, Math.max(0, f)) * (this.t1 - this.t0);
  }

  draw(data: ChartData, passage: { start: number; end: number } | null): void {
    this.data = data;
    this.passage = passage;
    this.width = Math.max(320, this.svg.parentElement?.clientWidth ?? 640);
    const height = MARGIN.top + 2 * PANEL_HEIGHT + GAP + MARGIN.bottom;
    this.svg.replaceChildren();
    this.svg.setAttribute('viewBox', `0 0 ${this.width} ${height}`);
    this.svg.setAttribute('width', String(this.width));
    this.svg.setAttribute('height', String(height));
    this.svg.setAttribute('aria-label', `Tempo and loudness of ${data.series.length} performances on the reference's time axis`);
    [this.t0, this.t1] = [data.times[0] ?? 0, data.times[data.times.length - 1] ?? 1];
    this.shade = [];
    for (const p of panels(data)) this.drawPanel(p, data);
    this.drawTimeAxis(height);
    this.cursor = el('line', { class: 'cursor', x1: this.x(this.t0), x2: this.x(this.t0), y1: MARGIN.top, y2: height - MARGIN.bottom }, this.svg);
    this.setPassage(passage);
  }

  private drawPanel(p: Panel, data: ChartData): void {
    const g = el('g', { class: `panel panel-${p.kind}` }, this.svg);
    const y = (v: number) => p.top + PANEL_HEIGHT - ((Math.min(p.hi, Math.max(p.lo, v)) - p.lo) / (p.hi - p.lo || 1)) * PANEL_HEIGHT;
    el('rect', { class: 'plot', x: MARGIN.left, y: p.top, width: this.width - MARGIN.left - MARGIN.right, height: PANEL_HEIGHT }, g);
    this.shade.push(el('rect', { class: 'passage', x: 0, y: p.top, width: 0, height: PANEL_HEIGHT, visibility: 'hidden' }, g));
    for (const v of p.ticks) {
      el('line', { class: 'grid', x1: MARGIN.left, x2: this.width - MARGIN.right, y1: y(v), y2: y(v) }, g);
      el('text', { class: 'tick', x: MARGIN.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, g).textContent = p.format(v);
    }
    el('text', { class: 'axis-title', x: MARGIN.left, y: p.top - 7 }, g).textContent = p.title;
    for (const s of data.series) {
      const values = p.kind === 'tempo' ? s.tempo : s.loudness;
      const d = data.times.map((t, i) => `${i ? 'L' : 'M'}${this.x(t).toFixed(1)},${y(values[i]).toFixed(1)}`).join('');
      const path = el('path', { class: 'curve', d, stroke: s.color, 'data-kind': p.kind, 'data-track': s.track }, g);
      el('title', {}, path).textContent = s.label;
    }
  }

  private drawTimeAxis(height: number): void {
    const g = el('g', { class: 'time-axis' }, this.svg);
    const base = height - MARGIN.bottom;
    const span = this.t1 - this.t0;
    const ticks = niceTicks(this.t0, this.t1, Math.max(2, Math.floor((this.width - MARGIN.left) / 90)));
    for (const t of ticks) {
      el('line', { class: 'tick-mark', x1: this.x(t), x2: this.x(t), y1: base, y2: base + 4 }, g);
      el('text', { class: 'tick', x: this.x(t), y: base + 16, 'text-anchor': 'middle' }, g).textContent = span < 20 ? `${+t.toFixed(2)} s` : clock(t);
    }
    el('text', { class: 'axis-title', x: this.width - MARGIN.right, y: base + 31, 'text-anchor': 'end' }, g).textContent =
      'time in the reference recording';
  }

  // The shared cursor, at a second of the reference.
  setCursor(t: number): void {
    const x = this.x(Math.min(this.t1, Math.max(this.t0, t)));
    this.cursor?.setAttribute('x1', String(x));
    this.cursor?.setAttribute('x2', String(x));
    this.svg.dataset.cursor = t.toFixed(2);
  }

  setPassage(p: { start: number; end: number } | null): void {
    this.passage = p;
    for (const r of this.shade) {
      r.setAttribute('visibility', p ? 'visible' : 'hidden');
      if (!p) continue;
      r.setAttribute('x', String(this.x(p.start)));
      r.setAttribute('width', String(Math.max(1, this.x(p.end) - this.x(p.start))));
    }
  }

  private down(e: PointerEvent): void {
    if (!this.data || e.button !== 0) return;
    this.svg.setPointerCapture(e.pointerId);
    const rect = el('rect', { class: 'passage drawing', x: e.clientX, y: MARGIN.top, width: 0, height: 2 * PANEL_HEIGHT + GAP }, this.svg);
    this.drag = { x: e.clientX, rect };
    this.move(e);
  }

  private move(e: PointerEvent): void {
    if (!this.drag) return;
    const a = this.x(this.time(this.drag.x)), b = this.x(this.time(e.clientX));
    this.drag.rect.setAttribute('x', String(Math.min(a, b)));
    this.drag.rect.setAttribute('width', String(Math.abs(b - a)));
  }

  private up(e: PointerEvent): void {
    if (!this.drag) return;
    const { x, rect } = this.drag;
    this.drag = null;
    rect.remove();
    const a = this.time(x), b = this.time(e.clientX);
    if (Math.abs(e.clientX - x) < 5) this.handlers.seek(a);
    else this.handlers.select(Math.min(a, b), Math.max(a, b));
  }
}
