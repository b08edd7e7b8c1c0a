// The MESS HTTP API as the web UI uses it (shapes as /openapi.json documents them).

export interface Track {
  track_id: string;
  dataset_id: string;
  work_id: string;
  duration_sec: number;
  metadata: Record<string, string>;
  has_audio: boolean;
}
// total_exact false: a text search matched more than `total` tracks (a lower bound, not counted further);
// the tracks then come in catalog order, and next_offset is set while pages are full.
export interface TrackPage {
  total: number; total_exact: boolean; offset: number; limit: number; next_offset: number | null; tracks: Track[];
}
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
  role?: RoleMoment;  // role-restricted passage search: the moment this passage holds
}
export type Role = 'climax' | 'cadence' | 'boundary' | 'modulation';
export interface RoleMoment { name: Role; time: number; interval?: number; }
// GET /api/tracks/{track_id}/structure (mess/structure.hpp's JSON form); keys written as "C major", "F# minor".
export interface Structure {
  track_id: string;
  duration_sec: number;
  boundaries: number[];
  sections: { start: number; end: number; label: string }[];
  keys: { start: number; end: number; key: string }[];
  modulations: { time: number; from: string; to: string; interval: number }[];
  climax: { time: number; start: number; end: number; strength: number } | null;
  cadences: { time: number; strength: number; key: string }[];
}
export interface SearchAnswer { results: Hit[]; layer_weights: number[]; query?: { role?: Role; clip_id?: string; moment?: RoleMoment }; }
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
  structure: (track: string) => get<Structure>(`/api/tracks/${id(track)}/structure`),
  works: () => get<{ works: Work[]; count: number }>('/api/works'),
  align: (a: string, b: string, resolution = 0.1) => get<Alignment>(`/api/align?a=${id(a)}&b=${id(b)}&resolution=${resolution}`),
  compare: (work: string, params: URLSearchParams) => get<Comparison>(`/api/works/${id(work)}/compare?${params}`),
};

// The listening test (/api/listen/...): a triplet of 5-s passages to judge, and the judgement posted back.
export interface Passage {
  id: string;  // clip id
  track_id: string;
  start_sec: number;
  end_sec: number;
  audio_url: string | null;  // the whole recording; the page plays start_sec…end_sec of it
  metadata: Record<string, string>;
}
export interface ListenTriplet {
  anchor: Passage;
  a: Passage;
  b: Passage;
  question: { aspect: string; text: string };
  sampler: { label: string; seed: number; draw: number; k: number };
  progress: { listener: string; judged: number };
}
export interface JudgementBody {
  anchor: string;
  a: string;
  b: string;
  choice: 'a' | 'b';
  aspect: string;
  listener: string;
  time_ms: number;
  sampler: string;
}

export const listenApi = {
  next: (params: URLSearchParams) => get<ListenTriplet>(`/api/listen/next?${params}`),
  judge: async (body: JudgementBody): Promise<{ progress: { judged: number } }> => {
    const res = await fetch('/api/listen/judgements', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const answer = await res.json().catch(() => null);
    if (!res.ok) throw new Error(answer?.error ?? `${res.status} ${res.statusText}`);
    return answer;
  },
};
