#!/usr/bin/python3
"""Writes the small hand-made seed inputs of the harnesses into fuzz/seeds/<harness>/ (committed; rerun after
changing this script). Seeds taken from tests/fixtures/ are copied by scripts/fuzz instead."""
import ctypes, ctypes.util, gzip, io, json, math, os, pathlib, struct, wave, zipfile

root = pathlib.Path(__file__).resolve().parent / "seeds"


def put(harness, name, data):
    d = root / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# ---- MIDI ----
def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def track(events):
    body = b"".join(vlq(dt) + ev for dt, ev in events) + b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def smf(fmt, division, tracks):
    return b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division) + b"".join(tracks)


notes = [(0, b"\xff\x51\x03\x07\xa1\x20"), (0, b"\xc0\x00"), (0, b"\x90\x3c\x40"), (0, b"\x40\x50"),  # running status
         (240, b"\x80\x3c\x00"), (0, b"\xb0\x40\x7f"), (0, b"\x90\x43\x60"), (480, b"\x43\x00"), (0, b"\xb0\x40\x00"),
         (10, b"\xf0\x03\x01\x02\xf7"), (0, b"\xff\x03\x04name")]
put("midi", "format0.mid", smf(0, 480, [track(notes)]))
put("midi", "format1.mid", smf(1, 96, [track([(0, b"\xff\x51\x03\x0f\x42\x40"), (960, b"\xff\x51\x03\x03\xd0\x90")]),
                                      track([(0, b"\x91\x30\x7f"), (100, b"\x91\x30\x7f"), (50, b"\x81\x30\x00"), (50, b"\x91\x30\x00")])]))
put("midi", "smpte.mid", smf(0, 0xE728, [track([(0, b"\x99\x24\x64"), (40, b"\x89\x24\x40"), (0, b"\xe0\x00\x40")])]))

# ---- labels.json ----
put("labels", "labels.json", json.dumps({
    "schema": "mess-corpus-labels/1", "seed": 7, "soundfont": "FluidR3_GM.sf2", "sample_rate": 22050,
    "items": [
        {"id": "greensleeves__v01", "work_id": "greensleeves", "file": "audio/greensleeves__v01.wav",
         "midi": "midi/greensleeves__v01.mid", "aspects": {"dynamics": "loud", "articulation": "legato"},
         "transform": {"tempo": 1.1}, "time_map": [[0, 0], [1.5, 1.2], [3, 2.9]], "duration_sec": 12.5},
        {"id": "greensleeves__v02", "work_id": "greensleeves", "recording_id": "r2", "source_midi": "src.mid"},
    ]}))

# ---- manifest.json (matches the fixed artifact the harness writes: Flat 2 × 4, layers 3 × 4) ----
aspect = {"aspect": "dynamics", "description": "loudness", "target": "rms_mean", "mode": "best_layer", "r2_score": 0.81,
          "confidence": "high", "layer": 1, "layer_weights": [], "r2_gain": 0.0, "n_valid": 20, "coverage": 1.0}
wsum = dict(aspect, aspect="timbre", mode="weighted_sum", layer_weights=[0.5, 0.25, 0.25], r2_score=0.6)
put("manifest", "manifest.json", json.dumps({
    "schema_version": 3, "artifact_name": "track_index", "artifact_version_id": "vid-" + "0123456789abcdef" * 2,
    "kind": "track", "index_type": "IndexFlatIP", "factory_string": "Flat", "metric": "cosine_ip", "dataset": "smd",
    "model_name": "dsp", "layer": "2", "dimension": 4, "ntotal": 2, "created_at_utc": "2024-01-01T00:00:00Z",
    "layers": 3, "layer_dim": 4, "window_sec": 5.0, "precision": "fp32", "device": "cpu", "aspects": [aspect, wsum]}))

# ---- HTTP query strings ----
for i, q in enumerate(["k=10&aspect=dynamics", "aspects=dynamics%3D0.7,timbre:0.3&exclude_same=work&group_by_track=true",
                       "filter=composer:Bach&filter=split%3Dtest&layer=weights:1,0,2", "layer=flatten&kind=clip&mode=auto",
                       "layer=middle&precision=bf16&device=cuda", "aspect=rhythm&layer=default&exclude_same=none"]):
    put("query", f"q{i}.txt", q)

# ---- safetensors: F32, F16, BF16, F64 tensors and metadata ----
def safetensors(entries):
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "tiny.safetensors", safetensors([
    ("a.weight", "F32", [2, 3], struct.pack("<6f", *range(6))), ("a.bias", "F16", [3], struct.pack("<3e", 1, -2, 0.5)),
    ("b", "BF16", [2], b"\x80\x3f\x00\x40"), ("c", "F64", [], struct.pack("<d", 3.25)), ("e", "F32", [0, 4], b"")]))

# ---- pytorch_model.bin: a tiny state dict (contiguous, transposed view, float16, bfloat16) ----
try:
    import torch
    from collections import OrderedDict
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = OrderedDict([("w", base), ("wt", base.t()), ("h", torch.ones(5, dtype=torch.float16)),
                      ("bf", torch.ones(2, 2, dtype=torch.bfloat16)), ("row", base[1])])
    buf = io.BytesIO()
    torch.save(sd, buf)
    put("torch_bin", "tiny.bin", buf.getvalue())
    put("torch_pickle", "tiny.pkl", zipfile.ZipFile(io.BytesIO(buf.getvalue())).read(
        next(n for n in zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist() if n.endswith("data.pkl"))))
except ImportError:
    print("torch not installed: torch seeds left as they are")

# ---- audio: WAV (8/16-bit, stereo, float), AIFF, and FLAC/Ogg written through libsndfile ----
def wav(name, rate, channels, width, frames):
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(channels), w.setsampwidth(width), w.setframerate(rate)
        samples = [int(100 * math.sin(i / 5)) for i in range(frames * channels)]
        w.writeframes(bytes((s + 128) & 0xFF for s in samples) if width == 1 else struct.pack(f"<{len(samples)}h", *samples))
    put("audio", name, b.getvalue())


wav("pcm16_mono_8k.wav", 8000, 1, 2, 1600)
wav("pcm8_stereo_24k.wav", 24000, 2, 1, 600)
fl = struct.pack("<400f", *[0.5 * math.sin(i / 7) for i in range(400)])
fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
put("audio", "float32_16k.wav", b"RIFF" + struct.pack("<I", 4 + 8 + 16 + 8 + len(fl)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
    + b"data" + struct.pack("<I", len(fl)) + fl)

lib = ctypes.util.find_library("sndfile")
if lib:
    sf = ctypes.CDLL(lib)

    class SFInfo(ctypes.Structure):
        _fields_ = [("frames", ctypes.c_int64), ("samplerate", ctypes.c_int), ("channels", ctypes.c_int),
                    ("format", ctypes.c_int), ("sections", ctypes.c_int), ("seekable", ctypes.c_int)]

    sf.sf_open.restype = ctypes.c_void_p
    sf.sf_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(SFInfo)]
    sf.sf_writef_float.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.c_int64]
    sf.sf_close.argtypes = [ctypes.c_void_p]
    for name, fmt_code, rate, channels in [("tiny.flac", 0x170002, 22050, 1), ("tiny.aiff", 0x020002, 11025, 2),
                                           ("tiny.ogg", 0x200060, 24000, 1)]:
        info = SFInfo(0, rate, channels, fmt_code, 0, 0)
        tmp = root / "audio" / name
        h = sf.sf_open(str(tmp).encode(), 0x20, ctypes.byref(info))
        if not h:
            print("libsndfile cannot write", name)
            continue
        n = 1000
        buf = (ctypes.c_float * (n * channels))(*[0.3 * math.sin(i / 9) for i in range(n * channels)])
        sf.sf_writef_float(h, buf, n)
        sf.sf_close(h)
