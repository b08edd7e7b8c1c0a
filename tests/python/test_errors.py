"""Bad inputs: a clear TypeError / ValueError / FileNotFoundError / mess.Error with MESS's message, never a silent cast."""

import errno

import numpy as np
import pytest

import mess


@pytest.fixture(scope="module")
def dsp():
    return mess.open_encoder("dsp", threads=1)


def test_wrong_dtype_is_a_type_error(dsp, track_index):
    x = np.zeros(48000, np.float64)
    with pytest.raises(TypeError, match="float32, not float64"):
        dsp.embed(x, 24000)
    with pytest.raises(TypeError, match="float32, not int16"):
        track_index.search_vector(np.ones(144, np.int16))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        dsp.embed([0.0] * 48000, 24000)
    with pytest.raises(TypeError, match="str or os.PathLike"):
        mess.open_encoder(3)


def test_wrong_shape_or_layout_is_a_value_error(dsp, track_index):
    x = np.zeros((2, 24000), np.float32)
    with pytest.raises(ValueError, match="1 dimension"):
        dsp.embed(x, 24000)
    with pytest.raises(ValueError, match="C-contiguous"):
        dsp.embed(np.zeros(96000, np.float32)[::2], 24000)
    with pytest.raises(ValueError, match="sample_rate"):
        dsp.embed(np.zeros(48000, np.float32))
    with pytest.raises(ValueError, match="empty"):
        track_index.search_vector(np.zeros(0, np.float32))
    with pytest.raises(ValueError):  # a vector of another space
        track_index.search_vector(np.ones(10, np.float32))


def test_missing_files(corpus, dsp):
    for call in (
        lambda: dsp.embed(corpus.root / "nope.wav"),
        lambda: mess.load_index(corpus.root / "no-index"),
        lambda: mess.open_encoder(corpus.root / "no-model"),
        lambda: mess.load_view(corpus.root / "elsewhere", corpus.dataset, "w0_v0", "segments"),
        lambda: mess.read_targets(corpus.root / "x.targets.npz"),
        lambda: mess.align(corpus.audio / "w0_v0.wav", corpus.root / "nope.flac"),
    ):
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert e.value.errno == errno.ENOENT and e.value.filename


def test_raw_view_not_kept_is_a_missing_file(corpus):
    with pytest.raises(FileNotFoundError, match="no raw view"):
        mess.load_view(corpus.root, corpus.dataset, "w0_v0", "raw")


def test_unknown_ids(corpus, track_index, clip_index):
    with pytest.raises(mess.UnknownIdError, match="unknown track id 'w0_v9'.*closest"):
        track_index.similar_tracks("w0_v9")
    with pytest.raises(LookupError):
        clip_index.similar_passages("nope", 3.0)
    with pytest.raises(mess.UnknownIdError, match="toy:w0_v0:00099"):
        clip_index.similar_passages(clip_id="toy:w0_v0:00099")
    with pytest.raises(mess.UnknownIdError, match="not extracted"):
        mess.load_view(corpus.root, corpus.dataset, "nope", "segments")
    with pytest.raises(ValueError, match="not a track id"):
        mess.load_view(corpus.root, corpus.dataset, "../w0_v0", "segments")


def test_bad_parameters_are_value_errors(track_index, clip_index):
    cases = [
        (lambda: track_index.similar_tracks("w0_v0", k=0), "k must be at least 1"),
        (lambda: track_index.similar_tracks("w0_v0", filters={"colour": "red"}), "unknown filter column 'colour'"),
        (lambda: track_index.similar_tracks("w0_v0", aspects="nonsense"), "available"),
        (lambda: track_index.similar_tracks("w0_v0", exclude_same="planet"), "planet"),
        (lambda: track_index.similar_passages("w0_v0"), "needs a clip index"),
        (lambda: clip_index.similar_tracks("w0_v0"), "needs a track index"),
        (lambda: clip_index.similar_passages("w0_v0", clip_id="toy:w0_v0:00000"), "not both"),
        (lambda: mess.open_encoder("dsp", device="tpu"), "tpu"),
        (lambda: mess.load_view(".", "toy", "w0_v0", "everything"), "everything"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_bad_audio_is_a_mess_error(dsp, tmp_path, clip_index):
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(mess.Error, match="junk.wav"):
        dsp.embed(tmp_path / "junk.wav")
    with pytest.raises(mess.Error, match="non-finite|NaN"):
        dsp.embed(np.full(48000, np.nan, np.float32), 24000)
    with pytest.raises(mess.Error, match="silent"):
        clip_index.search_audio(np.zeros(48000, np.float32), sample_rate=24000)
    with pytest.raises(mess.Error, match="silent"):
        mess.align(np.zeros(48000, np.float32), np.ones(48000, np.float32), sample_rate=24000)
