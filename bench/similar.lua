-- wrk script: GET /api/tracks/<random track>/similar?k=10 over the benchmark's N tracks.
local n = tonumber(os.getenv("MESS_BENCH_TRACKS") or "10000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", string.format("/api/tracks/track-%05d/similar?k=10", math.random(0, n - 1)))
end
