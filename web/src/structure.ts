// A track's structure drawn over its waveform: sections (bands labelled A, B, A'…), the climax (its extent
// shaded, a marker at the peak), cadences (markers, opacity by strength), and under the waveform the key
// strip (one span per key, modulations marked with their interval). The "find similar climaxes / cadences /
// modulations" buttons are enabled when the track has that role; clicking one calls `onRole`.
import { api, type Role, type Structure } from './api';
import { $, clock } from './ui';

const ROLES: Role[] = ['climax', 'cadence', 'modulation'];
const SECTION_COLORS = ['rgba(255, 196, 0, 0.10)', 'rgba(120, 200, 120, 0.10)', 'rgba(200, 120, 220, 0.10)', 'rgba(120, 160, 255, 0.10)'];
let shownFor = '';  // the track whose structure is drawn (a late answer for another track is dropped)

function pct(t: number, duration: number): string {
  return `${((100 * Math.max(0, Math.min(t, duration))) / duration).toFixed(3)}%`;
}

function element(cls: string, left: number, right: number, duration: number, text = ''): HTMLElement {
  const e = document.createElement('div');
  e.className = cls;
  e.style.left = pct(left, duration);
  e.style.width = `calc(${pct(right, duration)} - ${pct(left, duration)})`;
  e.textContent = text;
  return e;
}

function marker(cls: string, t: number, duration: number, label: string, title: string): HTMLElement {
  const e = document.createElement('div');
  e.className = `marker ${cls}`;
  e.style.left = pct(t, duration);
  e.dataset.time = String(t);
  e.title = title;
  const tag = document.createElement('span');
  tag.textContent = label;
  e.append(tag);
  return e;
}

function drawOverlay(s: Structure): void {
  const overlay = $('structure-overlay');
  const d = s.duration_sec || 1;
  const labels = [...new Set(s.sections.map((x) => x.label.replace(/'+$/, '')))];
  for (const sec of s.sections) {
    const band = element('section', sec.start, sec.end, d, sec.label);
    band.style.background = SECTION_COLORS[labels.indexOf(sec.label.replace(/'+$/, '')) % SECTION_COLORS.length];
    band.title = `section ${sec.label}: ${clock(sec.start)}–${clock(sec.end)}`;
    overlay.append(band);
  }
  if (s.climax) {
    overlay.append(element('climax-extent', s.climax.start, s.climax.end, d));
    overlay.append(marker('climax', s.climax.time, d, '▲ climax', `climax at ${clock(s.climax.time)}`));
  }
  for (const c of s.cadences) {
    const m = marker('cadence', c.time, d, 'C', `cadence in ${c.key} at ${clock(c.time)} (strength ${c.strength.toFixed(2)})`);
    m.style.opacity = String(0.4 + 0.6 * c.strength);
    overlay.append(m);
  }
}

function drawKeys(s: Structure): void {
  const strip = $('key-strip');
  const d = s.duration_sec || 1;
  for (const k of s.keys) {
    const span = element('key-span', k.start, k.end, d, k.key);
    span.title = `${k.key}: ${clock(k.start)}–${clock(k.end)}`;
    strip.append(span);
  }
  for (const m of s.modulations) {
    const sign = m.interval > 0 ? '+' : '';
    strip.append(marker('modulation', m.time, d, `${sign}${m.interval}`, `modulation at ${clock(m.time)}: ${m.from} → ${m.to}`));
  }
  strip.hidden = s.keys.length === 0;
}

function enableRoles(s: Structure | null): void {
  const has: Record<Role, boolean> = {
    climax: !!s?.climax,
    cadence: (s?.cadences.length ?? 0) > 0,
    modulation: (s?.modulations.length ?? 0) > 0,
    boundary: (s?.boundaries.length ?? 0) > 2,
  };
  for (const role of ROLES) {
    const b = $<HTMLButtonElement>(`role-${role}`);
    b.disabled = !has[role];
    b.title = has[role] ? `Passages holding a ${role} that sound like this track's` : `This track has no ${role}`;
  }
  $('role-buttons').hidden = !s;
}

export function clearStructure(): void {
  shownFor = '';
  $('structure-overlay').replaceChildren();
  $('key-strip').replaceChildren();
  $('key-strip').hidden = true;
  enableRoles(null);
  document.body.dataset.structure = 'none';
}

// Fetches and draws a track's structure; an index without structure leaves the waveform plain.
export async function showStructure(trackId: string): Promise<Structure | null> {
  clearStructure();
  shownFor = trackId;
  let s: Structure | null = null;
  try {
    s = await api.structure(trackId);
  } catch {
    s = null;  // built with --no-structure, or before structure was stored: nothing to draw
  }
  if (shownFor !== trackId) return null;
  if (s) {
    drawOverlay(s);
    drawKeys(s);
  }
  enableRoles(s);
  document.body.dataset.structure = s ? 'shown' : 'none';
  return s;
}

export function initRoleButtons(onRole: (role: Role) => void): void {
  for (const role of ROLES) $(`role-${role}`).addEventListener('click', () => onRole(role));
}
