-- wrk script for benches/miss.sh: every path of $PATHS in a seeded shuffle
-- ($SEED), each thread starting at its own offset, bodies copied to user
-- space as wrk always does. Prints one JSON line when done.
local paths = {}
for line in io.lines(os.getenv("PATHS")) do
  paths[#paths + 1] = line
end
math.randomseed(tonumber(os.getenv("SEED") or "1"))
for i = #paths, 2, -1 do
  local j = math.random(i)
  paths[i], paths[j] = paths[j], paths[i]
end

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  n = math.floor(id * #paths / 2)
  errors = 0
end

function request()
  n = n % #paths + 1
  return wrk.format("GET", paths[n])
end

function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("errors")
  end
  io.write(string.format(
    '{"requests": %d, "requests_per_s": %.1f, "p99_ms": %.3f, "bad_status": %d, "socket_errors": %d}\n',
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
