#!/usr/bin/python3
"""Probe latency under idle connections: opens N idle TCP connections to a running `mess serve` (they
connect and send nothing, like half-open or parked keep-alive clients), then times GET /health/live on
fresh connections while they stay open, and reports p50/p99/max in ms, failures, and how many of the idle
connections the server closed (its per-client cap closes the longest-waiting ones).

Usage: bench/bench_idle_connections.py --port 8080 [--idle 500] [--probes 200] [--timeout 10]
"""
import argparse, socket, time

def probe(host, port, timeout):
    t0 = time.perf_counter()
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        ok = data.startswith(b"HTTP/1.1 200")
    except OSError:
        ok = False
    return (time.perf_counter() - t0) * 1000, ok

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--probes", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    idle = []
    for _ in range(a.idle):
        try:
            idle.append(socket.create_connection((a.host, a.port), timeout=a.timeout))
        except OSError:
            break
    time.sleep(0.5)
    times, failed = [], 0
    for _ in range(a.probes):
        ms, ok = probe(a.host, a.port, a.timeout)
        times.append(ms)
        failed += not ok
    closed = 0
    for s in idle:
        s.setblocking(False)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(p * len(times)))]
    print(f"idle connections opened {len(idle)}, closed by the server {closed}; /health/live x{len(times)}: "
          f"p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {times[-1]:.1f} ms, failed {failed}")

if __name__ == "__main__":
    main()
