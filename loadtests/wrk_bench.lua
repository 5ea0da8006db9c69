-- wrk scenario: shoppers drawing through one HTTP target (`carnival bench http` runs it).
--   for u in $(seq 1 2000); do carnival token "u$u"; done > /tmp/tokens.txt
--   CARNIVAL_TOKENS_FILE=/tmp/tokens.txt \
--     wrk -t1 -c64 -d15s --timeout 10s -s loadtests/wrk_bench.lua http://127.0.0.1:8000
-- Environment:
--   CARNIVAL_TOKENS_FILE  shopper tokens, one per line (required)
--   WRK_PATH              the POST path (default: the demo wheel's draws)
--   WRK_RATE              optional total requests/s to approach; each thread hands its
--                         connections evenly spaced send slots (unset: as fast as answered)
--   WRK_THREADS           wrk's -t, to split WRK_RATE between threads (default 1)
-- Every request has a fresh request id and a random shopper's token. done() prints ONE
-- JSON line: requests, duration_s, status counts tallied in response(), socket errors and
-- latency percentiles in ms (wrk's latency:percentile(n) is in µs). wrk's own "timeout"
-- counts answers slower than --timeout: their status is tallied, their latency is not.
local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } wrk_bench_timespec;
  int clock_gettime(int clock_id, wrk_bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local MAX_CATCH_UP_MS = 1000 -- a thread behind its schedule by more starts a new one (no burst)

local clock = ffi.new("wrk_bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

-- main state: the threads, to read their tallies in done()
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

-- thread state
local tokens = {}
local counter = 0
local run_tag = string.format("%x", os.time())
local path = nil
statuses = {} -- global: done() reads it with thread:get

function init(args)
  local file = os.getenv("CARNIVAL_TOKENS_FILE") or error("set CARNIVAL_TOKENS_FILE")
  for line in io.lines(file) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  if #tokens == 0 then error("no tokens in " .. file) end
  path = os.getenv("WRK_PATH") or "/v1/activities/demo-wheel/draws"
  math.randomseed(os.time() * 1000 + id)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  local body = string.format('{"request_id":"b%s-%d-%d"}', run_tag, id, counter)
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

-- Pacing: defined only when WRK_RATE is set, since wrk then calls delay() before
-- every request.
local rate = tonumber(os.getenv("WRK_RATE") or "")
if rate and rate > 0 then
  local interval_ms = 1000 * (tonumber(os.getenv("WRK_THREADS") or "1") or 1) / rate
  local next_slot = nil

  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now - MAX_CATCH_UP_MS then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    if wait < 0 then return 0 end
    return math.floor(wait)
  end
end

local function ms(us)
  return us / 1000.0
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses") or {}) do
      counts[code] = (counts[code] or 0) + n
    end
  end
  local codes, ok2xx, conflict, other = {}, 0, 0, 0
  for code, n in pairs(counts) do
    codes[#codes + 1] = string.format('"%d":%d', code, n)
    if code >= 200 and code < 300 then
      ok2xx = ok2xx + n
    elseif code == 409 then
      conflict = conflict + n
    else
      other = other + n
    end
  end
  table.sort(codes)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_s":%.6f,"status":{%s},"2xx":%d,"409":%d,"other_non_2xx":%d,'
      .. '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"total":%d},'
      .. '"latency_ms":{"p50":%.3f,"p90":%.3f,"p95":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, summary.duration / 1e6, table.concat(codes, ","), ok2xx, conflict, other,
    e.connect, e.read, e.write, e.timeout, e.connect + e.read + e.write + e.timeout,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(95)),
    ms(latency:percentile(99)), ms(latency.max), ms(latency.mean)
  ))
end
