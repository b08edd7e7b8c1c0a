"""The feature store, datasets and target files through the module, against numpy.load and json of the same files."""

import json

import numpy as np

import mess


def emb_dir(corpus):
    return corpus.root / "embeddings" / f"{corpus.dataset}-emb"


def test_load_view_equals_numpy(corpus):
    for view in ("segments", "aggregated"):
        a = mess.load_view(corpus.root, corpus.dataset, "w0_v1", view)
        expected = np.load(emb_dir(corpus) / view / "w0_v1.npy")
        assert a.dtype == expected.dtype == np.float32
        np.testing.assert_array_equal(a, expected)


def test_feature_store(corpus):
    store = mess.FeatureStore(corpus.root, corpus.dataset)
    assert store.root == str(emb_dir(corpus))
    side = store.sidecar("w3_v0")
    with open(emb_dir(corpus) / "meta" / "w3_v0.json") as f:
        assert side == json.load(f)
    assert side["num_windows"] == 4 and side["model"] == "dsp"
    np.testing.assert_array_equal(store.view("w3_v0", "segments"), mess.load_view(corpus.root, corpus.dataset, "w3_v0", "segments"))
    assert store.check("w3_v0", "segments") == ("complete", "")
    state, reason = store.check("w3_v0", "all")  # extracted without raw frames
    assert state == "missing"
    assert store.audio_path("w3_v0") == str(corpus.audio / "w3_v0.wav")


def test_dataset_iteration(corpus):
    ds = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio)
    assert (ds.id, ds.kind) == (corpus.dataset, "folder")
    assert [t for t, _ in ds.tracks()] == sorted(corpus.tracks)
    seen = dict(ds.iter_features("segments"))
    assert sorted(seen) == corpus.tracks
    for track, a in seen.items():
        np.testing.assert_array_equal(a, np.load(emb_dir(corpus) / "segments" / f"{track}.npy"))
    rows = {r["track_id"]: r for r in ds.metadata()}
    assert rows["w2_v1"]["work_id"] == "w2" and rows["w2_v1"]["composer"] == "Beta"
    assert ds.features.root == str(emb_dir(corpus))


def test_iteration_skips_tracks_without_features(corpus, tmp_path):
    (tmp_path / "audio").mkdir()
    for track in ("w0_v0", "w1_v0"):
        (tmp_path / "audio" / f"{track}.wav").write_bytes((corpus.audio / f"{track}.wav").read_bytes())
    (tmp_path / "embeddings").symlink_to(corpus.root / "embeddings")
    extra = tmp_path / "audio" / "zz_new.wav"
    extra.write_bytes((corpus.audio / "w2_v0.wav").read_bytes())
    ds = mess.Dataset(tmp_path, corpus.dataset, audio_dir=tmp_path / "audio")
    assert [t for t, _ in ds.iter_features()] == ["w0_v0", "w1_v0"]  # zz_new has no features yet


def test_read_targets_equals_numpy(corpus):
    path = corpus.root / "proxy_targets" / corpus.dataset / "w1_v0.targets.npz"
    t = mess.read_targets(path)
    with np.load(path) as f:
        expected = {k: f[k] for k in f.files}
    assert sorted(t) == sorted(expected)
    for k, v in expected.items():
        assert t[k].dtype == v.dtype, k
        np.testing.assert_array_equal(t[k], v)
    assert "rhythm/tempo" in t and t["source/size_bytes"].dtype == np.int64
    ds = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio)
    np.testing.assert_array_equal(ds.targets("w1_v0")["dynamics/dynamic_range"], expected["dynamics/dynamic_range"])
