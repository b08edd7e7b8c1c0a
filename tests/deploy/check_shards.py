#!/usr/bin/env python3
"""Checks the catalog's record of a sharded extraction after the Slurm test (tests/deploy/test_slurm.sh).

    check_shards.py SHARDS_JSON RUNS_JSON --tracks T --killed I

SHARDS_JSON is `mess runs shards --count N --check --json`, RUNS_JSON `mess runs list --kind extract --json`.
Every shard i/N must be done with counts that add up to its tracks (T over all shards, none failed),
shard I in two attempts and every other shard in one; shard I's first run must be closed as interrupted
and its second ok; every track's extraction state must be done.
"""
import argparse
import json
import sys


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check_shards(report, tracks, killed):
    if not report["complete"] or report["problems"]:
        fail(f"extraction not complete: {report['problems']}")
    shards = {s["index"]: s for s in report["shards"] if s["count"] == report["count"]}
    if sorted(shards) != list(range(report["count"])):
        fail(f"shards recorded: {sorted(shards)}, expected 0..{report['count'] - 1}")
    for i, s in shards.items():
        if s["status"] != "done" or s["failed"] != 0 or s["error"]:
            fail(f"shard {s['shard']}: {s['status']} {s['error']}")
        if s["processed"] + s["cached"] != s["tracks"]:
            fail(f"shard {s['shard']}: processed {s['processed']} + cached {s['cached']} != tracks {s['tracks']}")
        want = 2 if i == killed else 1
        if s["attempts"] != want:
            fail(f"shard {s['shard']}: {s['attempts']} attempt(s), expected {want}")
    if sum(s["tracks"] for s in shards.values()) != tracks:
        fail(f"the shards hold {sum(s['tracks'] for s in shards.values())} tracks, expected {tracks}")
    if report["track_states"] != {"done": tracks}:
        fail(f"tracks' extraction states: {report['track_states']}, expected {{'done': {tracks}}}")
    return shards


def check_runs(runs, shards, killed, count):
    label = f"{killed}/{count}"
    of_killed = sorted((r for r in runs if r["parameters"].get("shard") == label), key=lambda r: r["started_at"])
    if len(of_killed) != 2:
        fail(f"{len(of_killed)} extract run(s) of shard {label} in the registry, expected 2")
    first, second = of_killed
    if first["status"] != "failed" or not first["error"].startswith("interrupted"):
        fail(f"the killed run {first['run_id']}: {first['status']} '{first['error']}', expected failed, interrupted")
    if second["status"] != "ok" or second["run_id"] != shards[killed]["run_id"]:
        fail(f"the retry {second['run_id']}: {second['status']}; the shard names run {shards[killed]['run_id']}")
    for i, s in shards.items():
        run = next((r for r in runs if r["run_id"] == s["run_id"]), None)
        if run is None or run["status"] != "ok" or run["parameters"].get("shard") != f"{i}/{count}":
            fail(f"shard {s['shard']}: its run {s['run_id']} is not an ok run of that shard: {run}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards_json")
    ap.add_argument("runs_json")
    ap.add_argument("--tracks", type=int, required=True)
    ap.add_argument("--killed", type=int, required=True)
    a = ap.parse_args()
    with open(a.shards_json, encoding="utf-8") as f:
        report = json.load(f)
    with open(a.runs_json, encoding="utf-8") as f:
        runs = json.load(f)
    shards = check_shards(report, a.tracks, a.killed)
    check_runs(runs, shards, a.killed, report["count"])
    print(f"catalog: {report['count']} shards done, {a.tracks} tracks done, shard {a.killed} killed once and retried")


if __name__ == "__main__":
    main()
