#!/usr/bin/python3
"""The Python module's overhead: Index.similar_tracks against the same Searcher call made from C++.

Builds a 10,000-track index of clustered random 768-d vectors (bench/make_track_index), times C++
Searcher::search for "tracks similar to this one" over it (bench/time_searches), then the same queries through
`mess` from Python — the call alone, and the call plus reading every hit's id and score — and prints the
ratios. A benchmark, not a test: nothing is asserted.

Reproduce (after `scripts/build release`):
    /usr/bin/python3 bench/bench_python.py [--build build] [--rows 10000] [--dim 768] [--calls 300] [--rounds 3] [--k 10] [--threads 1]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def best_per_call(fn, calls, repeats=3):
    fn(min(calls, 100))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(calls)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def main():
    root = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=root / "build", help="the CMake build directory (default: build)")
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="alternating C++ / Python rounds")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenMP threads of the scan on both sides (default 1: the binding's cost, not thread scheduling)")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # read when the OpenMP runtime loads: before `import mess`
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    sys.path.insert(0, str(args.build / "python"))
    import mess

    with tempfile.TemporaryDirectory() as tmp:
        made = subprocess.run([args.build / "bench" / "make_track_index", tmp, str(args.rows), str(args.dim)],
                              check=True, capture_output=True, text=True)
        artifact = made.stdout.strip().splitlines()[-1]
        index = mess.load_index(artifact)
        ids = index.ids
        k = args.k

        def cpp_per_call():
            out = subprocess.run([args.build / "bench" / "time_searches", artifact, str(args.calls), str(k)],
                                 check=True, capture_output=True, text=True).stdout
            return json.loads(out)["seconds_per_call"]

        def calls_only(n):
            for i in range(n):
                index.similar_tracks(ids[(i * 7919) % len(ids)], k)

        def calls_and_hits(n):
            for i in range(n):
                for h in index.similar_tracks(ids[(i * 7919) % len(ids)], k):
                    h.track_id, h.score

        # Rounds alternate the sides, so that a busy machine slows both alike; each side keeps its best.
        cpp = py_call = py_hits = float("inf")
        for _ in range(args.rounds):
            cpp = min(cpp, cpp_per_call())
            py_call = min(py_call, best_per_call(calls_only, args.calls))
            py_hits = min(py_hits, best_per_call(calls_and_hits, args.calls))
    print(f"similar_tracks on {args.rows} tracks × {args.dim} dims, k = {k}: best of {3 * args.rounds} runs of {args.calls} calls, "
          f"exact scan on {args.threads} thread(s)")
    print(f"  C++ Searcher::search             {cpp * 1e6:9.1f} µs/call   (reference)")
    print(f"  Python Index.similar_tracks      {py_call * 1e6:9.1f} µs/call   ratio {py_call / cpp:.3f}")
    print(f"  ... and reading each hit         {py_hits * 1e6:9.1f} µs/call   ratio {py_hits / cpp:.3f}")
    print(f"  overhead per call                {(py_call - cpp) * 1e6:9.1f} µs")


if __name__ == "__main__":
    main()
