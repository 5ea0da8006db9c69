-- wrk scenario: shoppers drawing on the demo wheel, one unique request id per request.
--   for u in $(seq 1 2000); do carnival token "u$u"; done > /tmp/tokens.txt
--   CARNIVAL_TOKENS_FILE=/tmp/tokens.txt wrk -t1 -c64 -d20s -s loadtests/wrk_draws.lua http://127.0.0.1:8000
-- Answers 200 (decided), 202 (ticket) and 409 (limit reached) are all normal
-- outcomes; wrk counts only non-2xx/3xx as errors, so read the 409 share as rejections.
local tokens = {}
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end

function init(args)
  local path = os.getenv("CARNIVAL_TOKENS_FILE") or error("set CARNIVAL_TOKENS_FILE")
  for line in io.lines(path) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + (id or 0))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  local body = string.format('{"request_id":"w%d-%d-%d"}', id or 0, os.time(), counter)
  return wrk.format(nil, "/v1/activities/demo-wheel/draws", nil, body)
end
