"""mess.load_index / Index queries against `mess search --json` on the same artifacts: hits and scores equal."""

import json
import shutil

import numpy as np
import pytest

import mess
from conftest import mess_json


def cli_results(index_dir, *args):
    return mess_json("search", "--index", index_dir, "--threads", "1", *args)["results"]


def test_similar_tracks_equal_the_cli(corpus, track_index):
    for track in corpus.tracks:
        hits = track_index.similar_tracks(track, k=5)
        cli = cli_results(track_index.directory, "--track", track, "--k", "5")
        assert hits.to_json() == cli
        assert [(h.id, h.score) for h in hits] == [(r["id"], r["score"]) for r in cli]
        assert track not in [h.track_id for h in hits]


@pytest.mark.parametrize(
    "kwargs, flags",
    [
        ({"aspects": "harmonic_richness=1,warmth=0.5"}, ["--aspects", "harmonic_richness=1,warmth=0.5"]),
        ({"aspects": {"harmonic_richness": 1.0}, "min_r2": 0.0, "scale_by_r2": False}, ["--aspect", "harmonic_richness", "--min-r2", "0", "--no-r2-scaling"]),
        ({"filters": {"composer": "beta"}}, ["--filter", "composer=beta"]),
        ({"filters": ["composer=Alpha", "split=train"]}, ["--filter", "composer=Alpha", "--filter", "split=train"]),
        ({"exclude_same": "work"}, ["--exclude-same", "work"]),
        ({"exact": True}, ["--exact"]),
    ],
)
def test_track_options_equal_the_cli(track_index, kwargs, flags):
    hits = track_index.similar_tracks("w0_v0", 4, **kwargs)
    assert hits.to_json() == cli_results(track_index.directory, "--track", "w0_v0", "--k", "4", *flags)
    if "aspects" in kwargs:
        assert len(hits.layer_weights) == track_index.layers


@pytest.mark.parametrize(
    "args, kwargs, flags",
    [
        (("w1_v0", 3.0), {}, ["--track", "w1_v0", "--start", "3"]),
        ((), {"clip_id": "toy:w2_v1:00002"}, ["--clip", "toy:w2_v1:00002"]),
        (("w3_v1", 6.0), {"group_by_track": True}, ["--track", "w3_v1", "--start", "6", "--group-tracks"]),
        (("w0_v1",), {"aspects": "brightness=1", "exclude_same": "track"}, ["--track", "w0_v1", "--aspects", "brightness=1", "--exclude-same", "track"]),
    ],
)
def test_similar_passages_equal_the_cli(clip_index, args, kwargs, flags):
    hits = clip_index.similar_passages(*args, k=6, **kwargs)
    assert hits.kind == "clip" and len(hits) == 6
    assert hits.to_json() == cli_results(clip_index.directory, "--k", "6", *flags)


def test_role_search_and_structure_equal_the_cli(corpus, clip_index):
    structure = clip_index.structure("w1_v0")
    cli = mess_json("search", "--index", clip_index.directory, "--track", "w1_v0", "--role", "climax", "--k", "6")
    assert cli["query"]["role"] == {"name": "climax", "time": structure["climax"]["time"]}
    hits = clip_index.similar_passages("w1_v0", k=6, role="climax")
    assert hits.to_json() == cli["results"]
    assert hits and all(h["role"]["name"] == "climax" and h["start_sec"] <= h["role"]["time"] < h["end_sec"] for h in hits.to_json())
    for h in hits.to_json():
        assert h["role"]["time"] == clip_index.structure(h["track_id"])["climax"]["time"]
    with pytest.raises(ValueError, match="bridge"):
        clip_index.similar_passages("w1_v0", role="bridge")
    with pytest.raises(mess.UnknownIdError):
        clip_index.structure("nope")


def test_search_audio_equals_the_cli(corpus, track_index, clip_index):
    audio = corpus.audio / "w2_v1.wav"
    for index in (clip_index, track_index):
        hits = index.search_audio(audio, start=5.0, k=3, threads=1)
        assert hits.to_json() == cli_results(index.directory, "--audio", audio, "--start", "5", "--k", "3")
        assert hits[0].track_id == "w2_v1"


def test_search_audio_from_an_array_equals_the_file(corpus, clip_index):
    import wave

    with wave.open(str(corpus.audio / "w3_v0.wav")) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    from_file = clip_index.search_audio(corpus.audio / "w3_v0.wav", 2.5, 5)
    from_array = clip_index.search_audio(samples, 2.5, 5, sample_rate=24000)
    assert from_array.to_json() == from_file.to_json()
    assert from_array[0].clip_id == "toy:w3_v0:00001" and from_array[0].score == pytest.approx(1.0, abs=1e-5)


def test_search_vector(corpus, track_index):
    aggregated = mess.load_view(corpus.root, corpus.dataset, "w1_v1", "aggregated")
    vector = np.ascontiguousarray(aggregated[4])  # the index's layer: dsp's "overall"
    before = vector.copy()
    hits = track_index.search_vector(vector, k=3)
    assert hits[0].track_id == "w1_v1" and hits[0].score == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(vector, before)  # the search normalises its own copy
    stacked = track_index.search_vector(aggregated, k=3, aspects="brightness=1")  # [layers, dim] with aspects
    assert stacked[0].track_id == "w1_v1"


def test_hits_as_objects_and_structured_array(clip_index, track_index):
    hits = clip_index.similar_passages("w0_v0", 5.0, k=4)
    h = hits[0]
    assert (h.rank, h.clip_id, h.id) == (1, h.id, hits.to_json()[0]["id"])
    assert h.start < h.end and h.segment_idx >= 0 and h.metadata["composer"] in ("Alpha", "Beta")
    assert hits[-1].rank == 4 and [x.rank for x in hits[1:3]] == [2, 3]
    a = hits.to_numpy()
    assert a.dtype.names == ("rank", "row", "score", "id", "track_id", "start", "end", "segment_idx")
    assert a["id"].tolist() == [x.id for x in hits]
    np.testing.assert_array_equal(a["score"], np.array([x.score for x in hits], np.float32))
    np.testing.assert_array_equal(a["start"], [x.start for x in hits])
    t = track_index.similar_tracks("w3_v0", k=2)
    assert t[0].start is None and t[0].clip_id is None and np.isnan(t.to_numpy()["start"]).all()
    assert "Hit(rank=1" in repr(t[0]) and len(list(t)) == 2
    with pytest.raises(IndexError):
        t[2]


def test_index_properties(corpus, track_index, clip_index):
    assert (track_index.kind, len(track_index), clip_index.kind) == ("track", len(corpus.tracks), "clip")
    assert track_index.model_name == "dsp" and track_index.dimension == 144 and track_index.layers == 6
    assert sorted(track_index.ids) == corpus.tracks
    assert "brightness" in track_index.aspects
    with open(f"{track_index.directory}/manifest.json") as f:
        assert track_index.manifest == json.load(f)
    assert track_index.version_id.startswith("vid-") and track_index.refused == []


def test_newest_version_that_loads(corpus, tmp_path):
    older = mess.load_index(corpus.indices, "track_index")
    root = tmp_path / "track_index"
    shutil.copytree(older.directory, root / "20200101T000000Z")
    newer = root / "29990101T000000Z"
    shutil.copytree(older.directory, newer)
    (newer / "records.json.gz").write_bytes(b"damaged")
    index = mess.load_index(tmp_path, "track_index")
    assert index.directory.endswith("20200101T000000Z")
    assert len(index.refused) == 1 and "29990101T000000Z" in index.refused[0]
    assert mess.load_index(root).directory == index.directory  # the folder of versions itself
    assert mess.load_index(root / "20200101T000000Z").version_id == older.version_id
    shutil.rmtree(root / "20200101T000000Z")
    with pytest.raises(mess.Error, match="no version"):
        mess.load_index(root)
