// Small helpers both views of the page use: element lookup, times, track names, the error banner, peaks.

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// Seconds as m:ss.
export function clock(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

// Seconds as m:ss.s (passages of a few seconds).
export function clockTenths(sec: number): string {
  const tenths = Math.max(0, Math.round(sec * 10));
  return `${Math.floor(tenths / 600)}:${(tenths % 600 / 10).toFixed(1).padStart(4, '0')}`;
}

export function titleOf(t: { track_id: string; metadata: Record<string, string> }): string {
  return t.metadata.title ? `${t.metadata.title}` : t.track_id;
}

export function describe(t: { track_id: string; metadata: Record<string, string> }): string {
  const m = t.metadata;
  return [m.composer, m.variant && m.variant !== 'original' ? m.variant : '', t.track_id].filter(Boolean).join(' · ');
}

export function showError(message: string | null): void {
  const banner = $('banner');
  banner.hidden = !message;
  banner.textContent = message ?? '';
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let timer: number | undefined;
  return (...args: A) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
}

// Peaks come in 0…1 of full scale; a quiet recording would look flat, so they are drawn relative to the
// track's own loudest bucket (which then fills the height).
export function normalisePeaks(peaks: number[]): { peaks: number[]; max: number; gain: number } {
  const max = peaks.reduce((m, p) => Math.max(m, Math.abs(p)), 0);
  const gain = max > 0 ? 1 / max : 1;
  return { peaks: peaks.map((p) => Math.min(1, Math.abs(p) * gain)), max, gain };
}
