"""The feature store, datasets and target files through the module, against numpy.load and json of the same files."""

import json

import numpy as np
import pytest

import mess
from conftest import run_mess


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


def test_metadata_comes_from_the_catalog(corpus, tmp_path, monkeypatch):
    """Dataset.metadata reads the catalog database the commands read: the catalog keyword, else MESS_CATALOG,
    else <data_root>/catalog.sqlite (where the corpus's extraction registered the dataset)."""
    monkeypatch.delenv("MESS_CATALOG", raising=False)
    default = "sqlite:" + str(corpus.root / "catalog.sqlite")
    assert mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio).catalog == default

    # A catalog the dataset was never synced to: registered from its metadata CSV on first use.
    own = tmp_path / "own.sqlite"
    url = "sqlite:" + str(own)
    ds = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio, catalog=url)
    assert ds.catalog == url and not own.exists()
    assert {r["track_id"]: r["composer"] for r in ds.metadata()}["w2_v1"] == "Beta"
    exported = tmp_path / "export.csv"
    run_mess("--catalog", url, "catalog", "export", *corpus.ds_args, "--file", exported, data_root=corpus.root)
    assert exported.read_text().count(",Beta") == 4  # the CLI sees what the module registered

    # An edit in the catalog (not in the CSV) reaches metadata(), through the keyword or MESS_CATALOG.
    exported.write_text(exported.read_text().replace(",Beta", ",Gamma"))
    run_mess("--catalog", url, "catalog", "import", *corpus.ds_args, "--file", exported, data_root=corpus.root)
    assert {r["track_id"]: r["composer"] for r in ds.metadata()}["w2_v1"] == "Gamma"
    assert "Gamma" not in (corpus.root / "metadata" / f"{corpus.dataset}_metadata.csv").read_text()
    monkeypatch.setenv("MESS_CATALOG", url)
    from_env = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio)
    assert from_env.catalog == url
    assert {r["track_id"]: r["composer"] for r in from_env.metadata()}["w3_v0"] == "Gamma"
    keyword_first = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio, catalog=default)
    assert {r["track_id"]: r["composer"] for r in keyword_first.metadata()}["w3_v0"] == "Beta"


def test_catalog_errors_name_the_catalog(corpus):
    with pytest.raises(ValueError, match="unknown catalog 'mysql://x'"):
        mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio, catalog="mysql://x")
    down = mess.Dataset(corpus.root, corpus.dataset, audio_dir=corpus.audio, catalog="postgresql://u:pw@127.0.0.1:1/none")
    assert down.catalog == "postgresql://u:***@127.0.0.1:1/none"
    with pytest.raises(mess.Error, match=r"cannot connect") as e:
        down.metadata()
    assert "u:***@127.0.0.1:1" in str(e.value) and ":pw@" not in str(e.value)


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
