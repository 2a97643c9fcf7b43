-- wrk script for bench/http_bench.py (not meant to be run by hand).
--
-- ABYSSAL_WRK_MODE=time: no request/response hooks at all, so wrk sends its one static request
--   (the URL given on the command line) at full speed; done() prints the latency percentiles.
-- ABYSSAL_WRK_MODE=addorder: every request is a different pre-signed AddOrder read from
--   ABYSSAL_WRK_REQUESTS (one "api_key<TAB>api_sign<TAB>body" per line, nonces increasing per key;
--   wrk's Lua has no HMAC, so Python signs them beforehand). A request is never sent twice: when the
--   list runs out the script sends GET /0/public/Time and counts it as "exhausted", which the Python
--   side treats as a failed run. response() checks Kraken's `"error":[]` and keeps every txid;
--   done() writes them to ABYSSAL_WRK_TXIDS and prints one BENCH_JSON line.
--
-- Run with -t1 (one thread): the request list is read once per thread and nonces are per key, so
-- several threads would each replay the same list.

local mode = os.getenv("ABYSSAL_WRK_MODE") or "time"
local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

if mode == "addorder" then
   local reqs, n, i = {}, 0, 0
   local fallback
   ok, bad, exhausted, err_sample = 0, 0, 0, ""
   txids = {}

   function init(args)
      local path = assert(os.getenv("ABYSSAL_WRK_REQUESTS"), "ABYSSAL_WRK_REQUESTS is not set")
      local f = assert(io.open(path, "rb"))
      local headers_base = { ["Content-Type"] = "application/x-www-form-urlencoded" }
      for line in f:lines() do
         local key, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.+)$")
         assert(key, "malformed request line " .. (n + 1))
         n = n + 1
         reqs[n] = wrk.format("POST", "/0/private/AddOrder", {
            ["Content-Type"] = headers_base["Content-Type"], ["API-Key"] = key, ["API-Sign"] = sig,
         }, body)
      end
      f:close()
      assert(n > 0, "no requests in " .. path)
      fallback = wrk.format("GET", "/0/public/Time", {}, nil)
   end

   function request()
      i = i + 1
      if i > n then
         exhausted = exhausted + 1
         return fallback
      end
      return reqs[i]
   end

   function response(status, headers, body)
      if status == 200 and body:find('"error":[]', 1, true) then
         local txid = body:match('"txid":%["([^"]+)"')
         if txid then
            ok = ok + 1
            txids[ok] = txid
            return
         end
      end
      bad = bad + 1
      if #err_sample == 0 then
         err_sample = (tostring(status) .. " " .. body:sub(1, 200)):gsub("[^%w%p ]", "?")
      end
   end
end

function done(summary, latency, requests)
   local ok_total, bad_total, exhausted_total, sample = 0, 0, 0, ""
   local out = mode == "addorder" and assert(io.open(assert(os.getenv("ABYSSAL_WRK_TXIDS")), "wb")) or nil
   for _, t in ipairs(threads) do
      if mode == "addorder" then
         ok_total = ok_total + t:get("ok")
         bad_total = bad_total + t:get("bad")
         exhausted_total = exhausted_total + t:get("exhausted")
         if #sample == 0 then sample = t:get("err_sample") end
         local tx = t:get("txids")
         for k = 1, #tx do out:write(tx[k], "\n") end
      end
   end
   if out then out:close() end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
      '"timeout":%d,"ok":%d,"bad":%d,"exhausted":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"p999_us":%d,"max_us":%d,"mean_us":%.1f,"err_sample":%q}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      ok_total, bad_total, exhausted_total, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean, sample))
end
