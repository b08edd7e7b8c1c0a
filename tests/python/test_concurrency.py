"""Threads, memory and interruption: searches from two threads at once, flat memory over 1,000 searches, the
GIL released while MESS works, Ctrl-C stopping a long embedding."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import mess
from conftest import render


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def answers(track_index, clip_index, corpus):
    out = []
    for t in corpus.tracks:
        out.append([(h.id, h.score) for h in track_index.similar_tracks(t, k=5, aspects="brightness=1")])
        out.append([(h.id, h.score) for h in clip_index.similar_passages(t, 4.0, k=5)])
    return out


def test_two_threads_searching_at_once(corpus, track_index, clip_index):
    expected = answers(track_index, clip_index, corpus)
    results, errors = [[], []], []

    def work(slot):
        try:
            for _ in range(20):
                results[slot].append(answers(track_index, clip_index, corpus))
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(r == expected for slot in results for r in slot) and len(results[0]) == len(results[1]) == 20


def test_memory_stays_flat_over_1000_searches(corpus, track_index, clip_index):
    vector = np.ascontiguousarray(mess.load_view(corpus.root, corpus.dataset, "w0_v0", "aggregated")[4])

    def search(i):
        track = corpus.tracks[i % len(corpus.tracks)]
        hits = track_index.similar_tracks(track, k=5, filters={"split": "train"})
        passages = clip_index.similar_passages(track, float(i % 8), k=5)
        track_index.search_vector(vector, k=3)
        return len(hits) + len(passages.to_numpy()) + len(passages.to_json()) + len([h.track_id for h in hits])

    for i in range(200):  # warm-up: caches, interned strings, allocator pools
        search(i)
    before = rss_bytes()
    for i in range(1000):
        search(i)
    grown = rss_bytes() - before
    assert grown < 2 * 1024 * 1024, f"RSS grew by {grown / 1024:.0f} KiB over 1,000 searches"


def test_the_gil_is_released_while_embedding():
    enc = mess.open_encoder("dsp", threads=1)
    x = render([60, 62, 64], 120.0)  # about 0.5 s of work on one thread
    done = threading.Event()
    ticks = 0

    def embed():
        enc.embed(x, 24000)
        done.set()

    t = threading.Thread(target=embed)
    t.start()
    while not done.is_set():  # runs only while the embedding thread does not hold the GIL
        ticks += 1
        time.sleep(0.001)
    t.join()
    # Had embed() held the GIL, this loop could run only before it took the GIL and after it returned: a tick or
    # two. Released, it runs throughout: one tick per 1-10 ms of sleep, depending on the machine's load.
    assert ticks > 20


class Interrupted(Exception):
    pass


def test_ctrl_c_interrupts_an_embedding():
    enc = mess.open_encoder("dsp", threads=1)
    x = render([60, 64, 67, 72], 600.0)  # 240 windows: about 2 s of work here, far more than the 0.3 s to Ctrl-C

    def on_sigint(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGINT, on_sigint)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        start = time.monotonic()
        timer.start()
        with pytest.raises(Interrupted):
            enc.embed(x, 24000)
        elapsed = time.monotonic() - start
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert elapsed < 1.5, f"the embedding ran {elapsed:.1f} s after Ctrl-C"
    assert enc.embed(x[:24000 * 6], 24000).segments.shape[0] == 2  # the encoder still works
