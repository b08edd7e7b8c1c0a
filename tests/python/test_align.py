"""mess.align / mess.compare against `mess align` and `mess compare` on the same files."""

import numpy as np
import pytest

import mess
from conftest import mess_json, render, run_mess, write_wav

TUNE = [60, 64, 67, 72, 67, 64, 62, 65, 69, 65]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A performance and one 1.25× slower, two semitones up (files, and their decoded samples)."""
    d = tmp_path_factory.mktemp("align")
    a = write_wav(d / "a.wav", render(TUNE, 10.0))
    b = write_wav(d / "b.wav", render(TUNE, 12.5, stretch=1.25, transpose=2))
    c = write_wav(d / "c.wav", render(TUNE, 9.0, stretch=0.9, gain=0.5))
    return d, a, b, c


def test_align_equals_the_cli(pair):
    d, _, _, _ = pair
    al = mess.align(d / "a.wav", d / "b.wav")
    run_mess("align", d / "a.wav", d / "b.wav", "--npy", d / "path.npy")
    cli = mess_json("align", d / "a.wav", d / "b.wav")
    assert al.path.dtype == np.float64 and al.path.shape == (cli["path_rows"], 2)
    np.testing.assert_array_equal(al.path, np.load(d / "path.npy"))
    for key in ("a", "b", "at", "elapsed_sec", "peak_rss_mb"):
        del cli[key]
    assert al.summary == cli
    assert (al.transposition, al.reliable) == (2, True)
    assert al.mean_tempo_ratio == pytest.approx(0.8, abs=0.03)
    assert al.time_b_at(8.0) == pytest.approx(10.0, abs=0.1)
    assert al.time_a_at(al.time_b_at(4.0)) == pytest.approx(4.0, abs=0.1)
    assert al.tempo_curve(0.5, 3.0).shape == (21,)


def test_align_arrays(pair):
    d, a, b, _ = pair
    from_files = mess.align(d / "a.wav", d / "b.wav")
    np.testing.assert_array_equal(mess.align(a, b, sample_rate=24000).path, from_files.path)
    mixed = mess.align(d / "a.wav", b, sample_rate=24000)  # the rate applies to the array
    np.testing.assert_array_equal(mixed.path, from_files.path)
    half = mess.align(a[::2].copy(), b[::2].copy(), sample_rate=12000, exact=True)
    assert half.transposition == 2 and half.mean_tempo_ratio == pytest.approx(0.8, abs=0.03)


def test_compare_equals_the_cli(pair):
    d, _, _, _ = pair
    files = [d / "a.wav", d / "b.wav", d / "c.wav"]
    c = mess.compare(files, start=1.0, end=8.0, reference_bpm=120)
    cli = mess_json("compare", *files, "--start", "1", "--end", "8", "--ref-bpm", "120")
    assert c.to_dict() == cli
    assert c.names == ["a", "b", "c"] and c.tempo_ratio.shape == (3, len(c.times)) == c.loudness_db.shape
    assert c.bpm.shape == c.tempo_ratio.shape and len(c.alignments) == 3
    assert np.median(c.tempo_ratio[1]) == pytest.approx(0.8, abs=0.05)
    named = mess.compare([files[0], files[2]], names=["ref", "fast"], step=0.5)
    assert named.names == ["ref", "fast"] and named.bpm is None
