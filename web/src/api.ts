// The MESS HTTP API as the web UI uses it (shapes as /openapi.json documents them).

export interface Track {
  track_id: string;
  dataset_id: string;
  work_id: string;
  duration_sec: number;
  metadata: Record<string, string>;
  has_audio: boolean;
}
export interface TrackPage { total: number; offset: number; limit: number; next_offset: number | null; tracks: Track[]; }
export interface Hit {
  rank: number;
  score: number;
  id: string;
  track_id: string;
  work_id: string;
  metadata: Record<string, string>;
  start_sec?: number;
  end_sec?: number;
  aspects?: Record<string, number>;  // cosine in each learned aspect space of the index
}
export interface SearchAnswer { results: Hit[]; layer_weights: number[]; }
// r2_band: the 95% bootstrap band over tracks and n_tracks behind the score (absent for older probe results);
// confidence is derived from the band's lower bound and n_tracks (mess/probe.hpp, confidence_label).
export interface Aspect {
  aspect: string; description: string; r2_score: number; confidence: string;
  r2_band?: [number, number]; n_tracks?: number;
}
export interface LearnedAspect { aspect: string; rung: string; validation_accuracy: number | null; indexes: string[]; }
export interface Waveform { track_id: string; duration_sec: number; per_second: number; peaks: number[]; }
// Rows [time in A (or the reference), time in B], seconds, monotone in both.
export type TimePath = [number, number][];
export interface Work {
  work_id: string;
  title: string;
  composer: string;
  performances: number;
  with_audio: number;
  tracks: { track_id: string; duration_sec: number; has_audio: boolean; metadata: Record<string, string> }[];
}
export interface Alignment {
  a: string;
  b: string;
  duration_a: number;
  duration_b: number;
  transposition: number;
  mean_tempo_ratio: number;
  confidence: number;
  reliable: boolean;
  resolution: number;
  path: TimePath;
}
// GET /api/works/{work_id}/compare: mess-compare/1 (mess/align.hpp) with track_id, metadata and path.
export interface ComparedTake {
  name: string;
  track_id: string;
  metadata: Record<string, string>;
  duration_sec: number;
  transposition: number;
  confidence: number;
  mean_tempo_ratio: number;
  passage: { start: number; end: number; duration: number };
  tempo_ratio: number[];
  loudness_db: number[];
  path: TimePath;  // [reference second, this performance's second]
}
export interface Comparison {
  schema: string;
  work_id: string;
  reference: string;
  start_sec: number;
  end_sec: number;
  step_sec: number;
  times: number[];
  performances: ComparedTake[];
  ranking: { name: string; passage_duration: number }[];
  tempo_correlation: { names: string[]; matrix: number[][] };
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

const id = encodeURIComponent;

export const api = {
  datasets: () => get<{ datasets: { dataset_id: string; tracks: number }[] }>('/api/datasets'),
  composers: () => get<{ composers: { composer: string; track_count: number }[] }>('/api/composers'),
  aspects: () => get<{ aspects: Aspect[]; learned?: LearnedAspect[] }>('/api/aspects'),
  tracks: (params: URLSearchParams) => get<TrackPage>(`/api/tracks?${params}`),
  track: (track: string) => get<Track>(`/api/tracks/${id(track)}`),
  waveform: (track: string) => get<Waveform>(`/api/tracks/${id(track)}/waveform?per_second=50`),
  similar: (track: string, params: URLSearchParams) => get<SearchAnswer>(`/api/tracks/${id(track)}/similar?${params}`),
  passages: (track: string, params: URLSearchParams) => get<SearchAnswer>(`/api/tracks/${id(track)}/passages?${params}`),
  works: () => get<{ works: Work[]; count: number }>('/api/works'),
  align: (a: string, b: string, resolution = 0.1) => get<Alignment>(`/api/align?a=${id(a)}&b=${id(b)}&resolution=${resolution}`),
  compare: (work: string, params: URLSearchParams) => get<Comparison>(`/api/works/${id(work)}/compare?${params}`),
};
