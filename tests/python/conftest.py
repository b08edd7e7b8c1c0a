"""Fixtures of the Python module's tests: a small rendered corpus prepared with the `mess` CLI.

The corpus: 4 works × 2 performances (the second one slower, transposed or softer), 12 s each, written as
16-bit WAV at 24 kHz with a metadata table; `mess extract --model dsp`, `mess targets`, `mess probe` and
`mess index build` (track and clip) run on it once per session, as tests/server does. The tests compare
the module with the CLI on the same files.

Environment (set by CTest): MESS_BINARY, the `mess` executable (default: build/apps/mess/mess), and
PYTHONPATH holding the built module (build/python).
"""

import json
import os
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MESS = os.environ.get("MESS_BINARY", str(ROOT / "build" / "apps" / "mess" / "mess"))
RATE = 24000

# (work, MIDI pitches of the tune): each tune a different contour, so that works are told apart.
WORKS = {
    "w0": [60, 62, 64, 65, 67, 65, 64, 62],
    "w1": [67, 64, 60, 64, 67, 72, 67, 64],
    "w2": [57, 60, 64, 69, 64, 60, 57, 52],
    "w3": [62, 62, 69, 69, 71, 71, 69, 67],
}
# The second performance of each work: (tempo stretch, transposition, gain).
VARIANTS = {"w0": (1.1, 0, 1.0), "w1": (1.0, 2, 1.0), "w2": (1.0, 0, 0.4), "w3": (0.9, 0, 1.0)}


def render(pitches, seconds, stretch=1.0, transpose=0, gain=1.0, rate=RATE):
    """Additive-synthesis notes (4 harmonics, decaying), one every 0.5 s × stretch, looping the tune."""
    n = int(seconds * rate)
    out = np.zeros(n, np.float64)
    step = 0.5 * stretch
    k = 0
    while k * step < seconds:
        pitch = pitches[k % len(pitches)] + transpose
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        start = int(k * step * rate)
        length = min(int(0.9 * step * rate), n - start)
        t = np.arange(length) / rate
        env = np.exp(-3.0 * t / step)
        note = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))
        out[start:start + length] += env * note
        k += 1
    return (0.25 * gain * out / np.max(np.abs(out))).astype(np.float32)


def write_wav(path, samples, rate=RATE):
    """16-bit PCM mono; returns the samples as MESS decodes them (int16 / 32768)."""
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def run_mess(*args, data_root=None):
    """Runs the CLI; returns its stdout (raises with its output when it fails)."""
    cmd = [MESS, "--log-level", "warn"] + (["--data-root", str(data_root)] if data_root else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def mess_json(*args, data_root=None):
    return json.loads(run_mess(*args, "--json", data_root=data_root))


class Corpus:
    """Paths of the prepared corpus."""

    def __init__(self, root: Path):
        self.root = root                   # the data root
        self.audio = root / "audio"
        self.indices = root / "indices"
        self.dataset = "toy"
        self.tracks = []                   # track ids, sorted
        self.ds_args = ["--audio-dir", self.audio, "--dataset-id", self.dataset]

    def track_index(self):
        return self.indices / "track_index"

    def clip_index(self):
        return self.indices / "clip_index"


def prepare(root: Path) -> Corpus:
    c = Corpus(root)
    c.audio.mkdir(parents=True)
    rows = ["track_id,recording_id,work_id,composer"]
    for work, pitches in WORKS.items():
        stretch, transpose, gain = VARIANTS[work]
        for v, (s, t, g) in enumerate([(1.0, 0, 1.0), (stretch, transpose, gain)]):
            track = f"{work}_v{v}"
            write_wav(c.audio / f"{track}.wav", render(pitches, 12.0, s, t, g))
            rows.append(f"{track},{track},{work},{'Alpha' if work in ('w0', 'w1') else 'Beta'}")
            c.tracks.append(track)
    (root / "metadata").mkdir()
    (root / "metadata" / "toy_metadata.csv").write_text("\n".join(rows) + "\n")
    with ThreadPoolExecutor(2) as pool:  # features and targets read only the audio
        features = pool.submit(run_mess, "extract", "--model", "dsp", *c.ds_args, data_root=root)
        targets = pool.submit(run_mess, "targets", "--no-curves", *c.ds_args, data_root=root)
        features.result()
        targets.result()
    run_mess("probe", "--controls", "0", *c.ds_args, data_root=root)
    for kind in ("track", "clip"):
        run_mess("index", "build", "--kind", kind, "--no-media", "--out", c.indices, *c.ds_args, data_root=root)
    return c


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    return prepare(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def track_index(corpus):
    import mess

    return mess.load_index(corpus.indices, "track_index")


@pytest.fixture(scope="session")
def clip_index(corpus):
    import mess

    return mess.load_index(corpus.indices, "clip_index")
