-- wrk script for tests/deploy/test_replicas.sh: requests cycle through PATHS (wrk's URL gives the
-- host), and done() prints one line "requests N non2xx M statuses {code=count,...}" summed over threads.
local threads = {}
local paths = {}
for p in string.gmatch(os.getenv("PATHS") or "/health/ready", "[^ ]+") do paths[#paths + 1] = p end

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  n, bad, codes = 0, 0, {}
end

function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    codes[status] = (codes[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local total_bad, merged = 0, {}
  for _, t in ipairs(threads) do
    total_bad = total_bad + t:get("bad")
    for code, c in pairs(t:get("codes")) do merged[code] = (merged[code] or 0) + c end
  end
  local parts = {}
  for code, c in pairs(merged) do parts[#parts + 1] = code .. "=" .. c end
  local e = summary.errors
  io.write(string.format("requests %d non2xx %d socket_errors %d statuses {%s}\n", summary.requests, total_bad,
    e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
