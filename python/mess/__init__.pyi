# Type stubs of the `mess` module (the extension mess._mess, re-exported by mess/__init__.py).
# Shapes: S windows, L layers, T frames per window, D dimensions, N rows, P performances.
import os
from typing import Any, Callable, Iterator, Mapping, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

PathLike = Union[str, os.PathLike[str]]
AudioInput = Union[PathLike, npt.NDArray[np.float32]]
Aspects = Union[None, str, Mapping[str, float]]
Filters = Union[None, Mapping[str, str], Sequence[str]]

class Error(Exception):
    """A MESS error: a bad or inconsistent input file, unusable audio, an index that does not load."""

class UnknownIdError(Error, LookupError):
    """A track or clip id the index or store does not hold."""

# ---------------------------------------------------------------------------------------------
# Encoders (thread-safe: one Encoder may embed from several threads at once)
# ---------------------------------------------------------------------------------------------

class Embedding:
    segments: npt.NDArray[np.float32]    # [S, L, D]
    starts: npt.NDArray[np.float64]      # [S] seconds
    ends: npt.NDArray[np.float64]        # [S] seconds
    aggregated: npt.NDArray[np.float32]  # [L, D]
    frames: npt.NDArray[np.float32] | None  # [S, L, T, D] with embed(frames=True)
    sample_rate: int

class Encoder:
    name: str
    architecture: str
    sample_rate: int
    layers: int
    dimension: int
    frame_rate: float
    layer_names: list[str]
    default_layer: int
    precision: str
    device: str
    threads: int
    def info(self) -> dict: ...
    def embed(self, audio: AudioInput, sample_rate: int | None = None, *, frames: bool = False, threads: int = 0,
              progress: Callable[[int, int], object] | None = None) -> Embedding: ...

def open_encoder(name_or_dir: PathLike, precision: str = "fp32", device: str = "cpu", threads: int = 0) -> Encoder: ...

# ---------------------------------------------------------------------------------------------
# Indexes (thread-safe: any number of threads may search one Index at once)
# ---------------------------------------------------------------------------------------------

class Hit:
    rank: int
    row: int
    score: float
    aspect_scores: Mapping[str, float]
    id: str
    track_id: str
    dataset_id: str
    recording_id: str
    work_id: str
    split: str
    metadata: dict[str, str]
    start: float | None       # passages only
    end: float | None         # passages only
    clip_id: str | None       # passages only
    segment_idx: int | None   # passages only

class Hits(Sequence[Hit]):
    kind: str                 # "track" | "clip"
    layer_weights: list[float]
    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, i: int) -> Hit: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Hit]: ...
    def __iter__(self) -> Iterator[Hit]: ...
    def to_numpy(self) -> np.ndarray: ...  # structured: rank, row, score, id, track_id, start, end, segment_idx
    def to_json(self) -> list[dict]: ...   # as `mess search --json` prints its "results"

class Index:
    kind: str
    dimension: int
    layers: int
    dataset: str
    model_name: str
    layer: str
    factory: str
    version_id: str
    directory: str
    manifest: dict
    refused: list[str]
    aspects: dict[str, dict]
    ids: list[str]
    def __len__(self) -> int: ...
    def similar_tracks(self, track_id: str, k: int = 10, aspects: Aspects = None, *, layer_weights: Sequence[float] | None = None,
                       filters: Filters = None, exclude_same: str = "", min_r2: float = 0.5, scale_by_r2: bool = True,
                       nprobe: int = 0, ef_search: int = 0, exact: bool = False, unlike: Aspects = None,
        more: Sequence[str] = (), less: Sequence[str] = (), text: str = "") -> Hits: ...
    def structure(self, track_id: str) -> dict[str, Any]: ...
    def similar_passages(self, track_id: str | None = None, start: float | None = None, k: int = 10, aspects: Aspects = None, *,
                         clip_id: str | None = None, group_by_track: bool = False, dedupe_sec: float = -1.0,
                         role: str | None = None, layer_weights: Sequence[float] | None = None, filters: Filters = None, exclude_same: str = "",
                         min_r2: float = 0.5, scale_by_r2: bool = True, nprobe: int = 0, ef_search: int = 0,
                         exact: bool = False, unlike: Aspects = None,
        more: Sequence[str] = (), less: Sequence[str] = (), text: str = "") -> Hits: ...
    def search_vector(self, vector: npt.NDArray[np.float32], k: int = 10, aspects: Aspects = None, *, group_by_track: bool = False,
                      dedupe_sec: float = -1.0, layer_weights: Sequence[float] | None = None, filters: Filters = None,
                      exclude_same: str = "", min_r2: float = 0.5, scale_by_r2: bool = True, nprobe: int = 0,
                      ef_search: int = 0, exact: bool = False, unlike: Aspects = None,
        more: Sequence[str] = (), less: Sequence[str] = (), text: str = "") -> Hits: ...
    def search_audio(self, audio: AudioInput, start: float = 0.0, k: int = 10, aspects: Aspects = None, *,
                     sample_rate: int | None = None, threads: int = 0, group_by_track: bool = False, dedupe_sec: float = -1.0,
                     layer_weights: Sequence[float] | None = None, filters: Filters = None, exclude_same: str = "",
                     min_r2: float = 0.5, scale_by_r2: bool = True, nprobe: int = 0, ef_search: int = 0,
                     exact: bool = False, unlike: Aspects = None,
        more: Sequence[str] = (), less: Sequence[str] = (), text: str = "") -> Hits: ...

def load_index(path: PathLike, name: str = "", *, model: str = "") -> Index: ...

# ---------------------------------------------------------------------------------------------
# Feature store, datasets, targets (values: safe from any thread)
# ---------------------------------------------------------------------------------------------

class FeatureStore:
    root: str
    def __init__(self, data_root: PathLike, dataset: str) -> None: ...
    def view(self, track_id: str, view: str) -> np.ndarray: ...  # "raw" | "segments" | "aggregated"
    def sidecar(self, track_id: str) -> dict: ...
    def check(self, track_id: str, level: str = "segments") -> tuple[str, str]: ...
    def audio_path(self, track_id: str) -> str: ...

class FeatureIterator(Iterator[tuple[str, np.ndarray]]):
    def __iter__(self) -> FeatureIterator: ...
    def __next__(self) -> tuple[str, np.ndarray]: ...

class Dataset:
    id: str
    kind: str
    data_root: str
    audio_dir: str
    catalog: str
    features: FeatureStore
    def __init__(self, data_root: PathLike, dataset: str, audio_dir: PathLike | None = None, catalog: str | None = None) -> None: ...
    def tracks(self) -> list[tuple[str, str]]: ...
    def iter_features(self, view: str = "aggregated") -> FeatureIterator: ...
    def targets(self, track_id: str) -> dict[str, np.ndarray]: ...
    def metadata(self) -> list[dict[str, str]]: ...

def load_view(data_root: PathLike, dataset: str, track_id: str, view: str) -> np.ndarray: ...
def read_targets(path: PathLike) -> dict[str, np.ndarray]: ...

# ---------------------------------------------------------------------------------------------
# Alignment (immutable results; the functions are reentrant)
# ---------------------------------------------------------------------------------------------

class Alignment:
    path: npt.NDArray[np.float64]  # [N, 2] (time in a, time in b), seconds
    duration_a: float
    duration_b: float
    transposition: int
    path_cost: float
    cost_ratio: float
    confidence: float
    reliable: bool
    mean_tempo_ratio: float
    summary: dict
    def time_b_at(self, t: float) -> float: ...
    def time_a_at(self, t: float) -> float: ...
    def tempo_curve(self, step: float = 0.1, window: float = 3.0) -> npt.NDArray[np.float64]: ...

class Comparison:
    names: list[str]
    times: npt.NDArray[np.float64]                   # [T]
    tempo_ratio: npt.NDArray[np.float64]             # [P, T]
    bpm: npt.NDArray[np.float64] | None              # [P, T]
    loudness_db: npt.NDArray[np.float64]             # [P, T]
    alignments: list[Alignment]
    def to_dict(self) -> dict: ...

def align(a: AudioInput, b: AudioInput, *, sample_rate: int | None = None, transposition: bool = True, open_begin: bool = False,
          open_end: bool = False, max_length_ratio: float = 4.0, exact: bool = False, radius: int = 12,
          step_penalty: float = 0.1) -> Alignment: ...
def compare(performances: Sequence[AudioInput], names: Sequence[str] | None = None, *, sample_rate: int | None = None,
            start: float = 0.0, end: float = 0.0, step: float = 0.1, tempo_window: float = 3.0, reference_bpm: float = 0.0,
            transposition: bool = True) -> Comparison: ...
