// Learned aspect spaces (mess index build with aspect models): one slider per learned aspect that re-ranks,
// an "unlike" toggle (similar in the others, different in this one), more/less buttons (only hits with
// more or less of it than the query: faster, louder, more legato), and each hit's similarity per aspect
// ("why it matched"). Kept apart from main.ts, which calls learnedParams, renderLearned and aspectBadges.
import type { Hit, LearnedAspect } from './api';

type Direction = 'more' | 'less' | null;
const learned = {
  weights: new Map<string, number>(),
  unlike: new Set<string>(),
  direction: new Map<string, Direction>(),
};

// True when the listener set anything in the learned panel (it then ranks instead of the probed sliders).
export function learnedActive(): boolean {
  return learned.weights.size > 0 || learned.unlike.size > 0 || [...learned.direction.values()].some((d) => d !== null);
}

// aspects / unlike / more / less query parameters of the learned panel.
export function learnedParams(params: URLSearchParams): string {
  const aspects = [...learned.weights].map(([name, w]) => `${name}:${w.toFixed(2)}`).join(',');
  if (aspects) params.set('aspects', aspects);
  if (learned.unlike.size) params.set('unlike', [...learned.unlike].join(','));
  for (const kind of ['more', 'less'] as const) {
    const names = [...learned.direction].filter(([, d]) => d === kind).map(([name]) => name);
    if (names.length) params.set(kind, names.join(','));
  }
  const parts = [aspects && `learned ${aspects.replaceAll(',', ', ')}`, learned.unlike.size && `unlike ${[...learned.unlike].join(', ')}`,
    ...[...learned.direction].filter(([, d]) => d).map(([name, d]) => `${d} ${name}`)];
  return parts.filter(Boolean).join(' · ');
}

export function renderLearned(box: HTMLElement, aspects: LearnedAspect[], rerank: () => void): void {
  box.replaceChildren();
  box.hidden = aspects.length === 0;
  if (!aspects.length) return;
  const head = document.createElement('p');
  head.className = 'muted';
  head.textContent = 'Learned aspect spaces: weigh an aspect, turn it against the ranking (unlike), or ask for more or less of it than the query.';
  box.append(head);
  for (const a of aspects) {
    const row = document.createElement('div');
    row.className = 'learned-aspect';
    row.dataset.aspect = a.aspect;
    row.innerHTML = `<span class="name"></span> <span class="weight"></span><input type="range" min="0" max="1" step="0.05" value="0">` +
      `<label class="toggle"><input type="checkbox" class="unlike"> unlike</label><button class="more">more</button><button class="less">less</button>`;
    row.querySelector('.name')!.textContent = a.aspect;
    const slider = row.querySelector<HTMLInputElement>('input[type=range]')!;
    slider.setAttribute('aria-label', `${a.aspect} learned weight`);
    slider.addEventListener('input', () => {
      const w = Math.round(Number(slider.value) * 100) / 100;
      if (w > 0) learned.weights.set(a.aspect, w);
      else learned.weights.delete(a.aspect);
      row.querySelector('.weight')!.textContent = w > 0 ? `× ${w.toFixed(2)}` : '';
      rerank();
    });
    row.querySelector<HTMLInputElement>('.unlike')!.addEventListener('change', (e) => {
      if ((e.target as HTMLInputElement).checked) learned.unlike.add(a.aspect);
      else learned.unlike.delete(a.aspect);
      rerank();
    });
    for (const kind of ['more', 'less'] as const) {
      const button = row.querySelector<HTMLButtonElement>(`.${kind}`)!;
      button.addEventListener('click', () => {
        const next = learned.direction.get(a.aspect) === kind ? null : kind;
        learned.direction.set(a.aspect, next);
        row.querySelectorAll('button').forEach((b) => b.classList.toggle('on', b.classList.contains(next ?? '-')));
        rerank();
      });
    }
    box.append(row);
  }
}

// "Why it matched": the hit's cosine similarity in each learned aspect space.
export function aspectBadges(hit: Hit): HTMLElement {
  const span = document.createElement('span');
  span.className = 'muted why';
  const scores = Object.entries(hit.aspects ?? {});
  span.textContent = scores.length ? ` · ${scores.map(([name, s]) => `${name} ${(s * 100).toFixed(0)} %`).join(', ')}` : '';
  return span;
}
