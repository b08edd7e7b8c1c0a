"""mess.open_encoder / Encoder.embed against `mess embed`: bit for bit, from files and from arrays."""

import numpy as np
import pytest

import mess
from conftest import RATE, ROOT, render, run_mess, write_wav


@pytest.fixture(scope="module")
def dsp():
    return mess.open_encoder("dsp", threads=1)


def cli_embed(tmp_path, audio, view, *extra):
    out = tmp_path / f"{view}.npy"
    run_mess("embed", "--model", "dsp", audio, "--out", out, "--view", view, "--threads", "1", *extra)
    return np.load(out)


def test_file_equals_cli_bit_for_bit(corpus, dsp, tmp_path):
    audio = corpus.audio / "w1_v1.wav"
    e = dsp.embed(audio, frames=True)
    assert e.segments.dtype == np.float32 and e.aggregated.dtype == np.float32
    S, L, D = e.segments.shape
    assert (L, D) == (dsp.layers, dsp.dimension) == (6, 144)
    assert e.aggregated.shape == (L, D) and e.frames.shape[:2] == (S, L)
    np.testing.assert_array_equal(e.segments, cli_embed(tmp_path, audio, "segments"))
    np.testing.assert_array_equal(e.aggregated, cli_embed(tmp_path, audio, "aggregated"))
    np.testing.assert_array_equal(e.frames, cli_embed(tmp_path, audio, "raw"))
    assert e.starts.tolist() == [0.0, 2.5, 5.0, 7.0] and e.ends.tolist() == [5.0, 7.5, 10.0, 12.0]  # tail window aligned to the end


def test_features_equal_the_store(corpus, dsp):
    e = dsp.embed(corpus.audio / "w2_v0.wav")
    np.testing.assert_array_equal(e.segments, mess.load_view(corpus.root, corpus.dataset, "w2_v0", "segments"))
    np.testing.assert_array_equal(e.aggregated, mess.load_view(corpus.root, corpus.dataset, "w2_v0", "aggregated"))


def test_array_at_model_rate_equals_input_npy(dsp, tmp_path):
    x = render([60, 64, 67], 7.0)
    np.save(tmp_path / "x.npy", x)
    e = dsp.embed(x, RATE)
    np.testing.assert_array_equal(e.segments, cli_embed(tmp_path, tmp_path / "x.npy", "segments", "--input-npy"))
    assert e.frames is None and e.sample_rate == RATE
    assert x.flags.writeable and np.array_equal(x, np.load(tmp_path / "x.npy"))  # read, never written


def test_array_at_another_rate_equals_the_file(dsp, tmp_path):
    decoded = write_wav(tmp_path / "x44.wav", render([62, 65, 69], 6.0, rate=44100), rate=44100)
    from_file = dsp.embed(tmp_path / "x44.wav")
    from_array = dsp.embed(decoded, 44100)  # resampled as the decoder resamples the file
    np.testing.assert_array_equal(from_file.segments, from_array.segments)


def test_returned_arrays_own_their_memory(corpus):
    enc = mess.open_encoder("mfcc-chroma")
    e = enc.embed(str(corpus.audio / "w0_v0.wav"))
    seg, agg = e.segments, e.aggregated
    expected = seg.copy()
    del e, enc
    import gc

    gc.collect()
    np.testing.assert_array_equal(seg, expected)  # still valid without the Embedding or the Encoder
    seg[0, 0, 0] = 42.0                           # writable, and independent of other results
    assert agg.shape == (1, seg.shape[2])


def test_encoder_info(dsp):
    info = dsp.info()
    assert info["name"] == "dsp" and dsp.sample_rate == RATE
    assert dsp.layer_names == ["timbre", "harmony", "rhythm", "dynamics", "overall", "expression"]
    assert dsp.threads == 1 and "dsp" in repr(dsp)


def test_mert_checkpoint_equals_cli(corpus, tmp_path):
    model = ROOT / "tests" / "fixtures" / "mert" / "mert95m_tiny"  # a tiny random MERT-95M-shaped checkpoint
    enc = mess.open_encoder(model, threads=1)
    assert enc.architecture == "MERTModel" and enc.precision == "fp32" and enc.layers == len(enc.layer_names)
    audio = corpus.audio / "w0_v1.wav"
    e = enc.embed(audio, frames=True)
    out = tmp_path / "mert.npy"
    run_mess("embed", "--model", model, audio, "--out", out, "--view", "raw", "--threads", "1")
    np.testing.assert_array_equal(e.frames, np.load(out))
    assert e.segments.shape == (4, enc.layers, enc.dimension)


@pytest.mark.parametrize("threads", [1, 2])
def test_progress_counts_windows_to_the_end(threads):
    enc = mess.open_encoder("dsp", threads=threads)
    x = render([60, 64, 67], 30.0)  # 11 windows of 5 s, hop 2.5 s
    calls = []
    out = enc.embed(x, RATE, progress=lambda done, total: calls.append((done, total)))
    windows = out.segments.shape[0]
    assert calls[-1] == (windows, windows)
    assert all(total == windows for _, total in calls)
    assert [d for d, _ in calls] == sorted(set(d for d, _ in calls))  # increasing, never repeated
    if threads == 1:
        assert [d for d, _ in calls] == list(range(1, windows + 1))  # one call per window


def test_an_exception_from_progress_abandons_the_embedding():
    enc = mess.open_encoder("dsp", threads=1)

    def stop(done, total):
        if done == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        enc.embed(render([60], 30.0), RATE, progress=stop)
    with pytest.raises(TypeError, match="progress"):
        enc.embed(render([60], 6.0), RATE, progress=3)
