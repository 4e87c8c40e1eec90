-- AWS JSON 1.1 requests for benchmarks/bench_http.py, which runs:
--
--   wrk -t T -c C -d S -s json11.lua http://127.0.0.1:PORT/ -- TARGET FORMAT COUNT T AUTHORIZATION
--
-- Each request is a POST / with X-Amz-Target: TARGET, Content-Type:
-- application/x-amz-json-1.1, the AUTHORIZATION header and the body
-- string.format(FORMAT, i) for an index i in [0, COUNT). Thread t of T takes
-- the indexes t, t + T, t + 2T, ... and goes round them again when it has
-- used them all, so a Stop past the seeded experiments stops one already
-- stopped (ConflictException). The requests are built once, in init.
--
-- done() writes one line, "BENCH {json}": requests answered, duration, the
-- error counts, p50 and p99 (microseconds) and, per thread, how many requests
-- it issued and how many distinct ones it had, so bench_http.py can tell how
-- many went past the seed.

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

function init(args)
   local target, format, count, stride, authorization =
      args[1], args[2], tonumber(args[3]), tonumber(args[4]), args[5]
   local headers = {
      ["Content-Type"] = "application/x-amz-json-1.1",
      ["X-Amz-Target"] = target,
      ["Authorization"] = authorization,
   }
   prepared = {}
   for i = id, count - 1, stride do
      prepared[#prepared + 1] = wrk.format("POST", "/", headers, string.format(format, i))
   end
   owned = #prepared
   issued = 0
end

function request()
   local position = issued % owned + 1
   issued = issued + 1
   return prepared[position]
end

function done(summary, latency, requests)
   local shares = {}
   for _, thread in ipairs(threads) do
      shares[#shares + 1] = string.format(
         '{"issued":%d,"owned":%d}', thread:get("issued"), thread:get("owned")
      )
   end
   local errors = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,'
         .. '"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"threads":[%s]}\n',
      summary.requests, summary.duration, errors.status, errors.connect, errors.read,
      errors.write, errors.timeout, latency:percentile(50.0), latency:percentile(99.0),
      table.concat(shares, ",")
   ))
end
