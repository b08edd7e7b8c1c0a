#!/usr/bin/python3
"""Load client of bench/bench_soak.sh: keeps `--clients` keep-alive connections busy for `--seconds` with
a mix of routes and audio uploads, samples the server's RSS (/proc/PID/status) every 5 s, and prints one
JSON line: requests, uploads, errors (non-2xx or failed connections), RSS samples in MB."""
import argparse, http.client, json, os, random, threading, time

def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--uploads", required=True, help="directory of WAV files to upload")
    ap.add_argument("--tracks", required=True, help="comma-separated track ids")
    a = ap.parse_args()
    tracks = a.tracks.split(",")
    uploads = [open(os.path.join(a.uploads, f), "rb").read() for f in sorted(os.listdir(a.uploads))]
    stop = time.monotonic() + a.seconds
    lock = threading.Lock()
    counts = {"requests": 0, "uploads": 0, "errors": 0}
    errors = {}

    def request(conn, method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status

    def client(seed):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        while time.monotonic() < stop:
            t = rnd.choice(tracks)
            pick = rnd.random()
            method, body, headers = "GET", None, {}
            if pick < 0.25:
                method, path, body, headers = "POST", f"/api/search/audio?k=5&start=0&kind={rnd.choice(['clip', 'track'])}", rnd.choice(uploads), {"Content-Type": "audio/wav"}
            elif pick < 0.45:
                path = f"/api/tracks/{t}/similar?k={rnd.randint(1, 10)}"
            elif pick < 0.6:
                path = f"/api/tracks/{t}/passages?start={rnd.randint(0, 3)}&k=5"
            elif pick < 0.7:
                path = f"/api/tracks?q={rnd.choice(['a', 'soak', 'x'])}&limit=20&offset={rnd.randint(0, 8)}"
            elif pick < 0.8:
                path = f"/api/tracks/{t}/waveform?points={rnd.randint(16, 400)}"
            elif pick < 0.9:
                path, headers = f"/api/tracks/{t}/audio", {"Range": f"bytes={rnd.randint(0, 1000)}-{rnd.randint(1001, 90000)}"}
            else:
                path = rnd.choice(["/health/live", "/health", "/metrics", "/api/aspects", "/api/datasets"])
            try:
                status = request(conn, method, path, body, headers)
                ok = status < 300
            except Exception as e:  # noqa: BLE001 - any failure counts
                status, ok = type(e).__name__, False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
            with lock:
                counts["requests"] += 1
                counts["uploads"] += method == "POST"
                if not ok:
                    counts["errors"] += 1
                    key = f"{method} {path.split('?')[0]} → {status}"
                    errors[key] = errors.get(key, 0) + 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
    samples = [(0.0, rss_mb(a.pid))]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(min(5.0, max(0.1, stop - time.monotonic())))
        samples.append((round(time.monotonic() - t0, 1), round(rss_mb(a.pid), 1)))
    for t in threads:
        t.join()
    print(json.dumps({**counts, "seconds": round(time.monotonic() - t0, 1), "rss_mb": samples, "error_kinds": errors}))

if __name__ == "__main__":
    main()
