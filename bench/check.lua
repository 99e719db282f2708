-- wrk script: POST getAvailableReleases, rotating through pre-generated request bodies.
--
--   BENCH_CHECKS=path/checks.txt wrk -s check.lua http://127.0.0.1:PORT
--
-- checks.txt has one JSON request body per line. Each wrk thread starts at a different offset
-- so the threads do not send the same body at the same moment. With BENCH_QUERY_ID=1 every
-- request carries a fresh Licence-QueryID, so every answer is RSA-signed anew (no cache).
-- With BENCH_ANSWERS=/prefix it sends, where it would POST body N (N from 1, the line number
-- in checks.txt), a plain GET of /prefix/N.json instead: nginx serving vypusk's answer to body
-- N as a static file, in the same order, so answer sizes match request by request.
-- At the end one JSON line starting with "BENCH_RESULT " is printed for run.sh.

local path = "/releases/v1/1c/getAvailableReleases"
local answers = os.getenv("BENCH_ANSWERS") -- GET <answers>/<N>.json instead of POSTing body N
local bodies = {}
local file = assert(io.open(os.getenv("BENCH_CHECKS") or "checks.txt", "r"))
for line in file:lines() do
   if #line > 0 then bodies[#bodies + 1] = line end
end
file:close()
assert(#bodies > 0, "no request bodies")

local with_query_id = os.getenv("BENCH_QUERY_ID") == "1"
local requests = {}
local counter = 0
local thread_id = 0

function setup(thread)
   thread:set("thread_id", thread_id)
   thread_id = thread_id + 1
end

function init(args)
   counter = (thread_id * 7919) % #bodies
   if answers then
      for i = 1, #bodies do
         requests[i] = wrk.format("GET", answers .. "/" .. i .. ".json")
      end
   elseif not with_query_id then
      -- Pre-format every request once: the client then costs almost nothing per request.
      for i, body in ipairs(bodies) do
         requests[i] = wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
      end
   end
   math.randomseed(thread_id + 1)
end

function request()
   counter = counter % #bodies + 1
   if with_query_id then
      local qid = string.format("%08x-%08x-%d", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), counter)
      return wrk.format("POST", path,
         { ["Content-Type"] = "application/json", ["Licence-QueryID"] = qid }, bodies[counter])
   end
   return requests[counter]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"rps":%.1f,' ..
      '"lat_p50_ms":%.3f,"lat_p99_ms":%.3f,"lat_max_ms":%.3f,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      e.connect, e.read, e.write, e.status, e.timeout))
end
