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
}
export interface SearchAnswer { results: Hit[]; layer_weights: number[]; }
export interface Aspect { aspect: string; description: string; r2_score: number; confidence: string; }
export interface Waveform { track_id: string; duration_sec: number; per_second: number; peaks: number[]; }

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
  aspects: () => get<{ aspects: Aspect[] }>('/api/aspects'),
  tracks: (params: URLSearchParams) => get<TrackPage>(`/api/tracks?${params}`),
  track: (track: string) => get<Track>(`/api/tracks/${id(track)}`),
  waveform: (track: string) => get<Waveform>(`/api/tracks/${id(track)}/waveform?per_second=50`),
  similar: (track: string, params: URLSearchParams) => get<SearchAnswer>(`/api/tracks/${id(track)}/similar?${params}`),
  passages: (track: string, params: URLSearchParams) => get<SearchAnswer>(`/api/tracks/${id(track)}/passages?${params}`),
};
