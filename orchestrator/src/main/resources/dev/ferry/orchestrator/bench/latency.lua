-- ferryd bench's wrk script: at the end of a run, one JSON line on stdout with the request count,
-- errors, and latency percentiles (microseconds) twice:
--   "measured":  wrk's own figures. wrk is closed-loop: each connection sends its next request when
--                the previous answer arrived, so while the server stalls no requests are sent, and
--                the stall is counted once, by the one request that waited through it (coordinated
--                omission: the percentiles look better than what a client sending at a steady rate
--                would see).
--   "corrected": the same samples corrected as HdrHistogram's recordValueWithExpectedInterval does:
--                the expected interval is each connection's mean time between requests over the run
--                (connections / requests per second), and a request that took L adds the samples
--                L - I, L - 2I, ... down to I, standing for the requests a steady client would have
--                sent during the wait and that would each have waited that long.
-- The number of connections comes from the environment (FERRY_WRK_CONNECTIONS), as wrk gives done()
-- no access to its options.

local function percentile(values, counts, total, p)
  local rank = math.ceil(total * p / 100)
  local seen = 0
  for i = 1, #values do
    seen = seen + counts[values[i]]
    if seen >= rank then
      return values[i]
    end
  end
  return values[#values] or 0
end

local function summarize(histogram)
  local values = {}
  local total = 0
  for value, count in pairs(histogram) do
    values[#values + 1] = value
    total = total + count
  end
  table.sort(values)
  local ps = {50, 90, 99, 99.9}
  local out = {}
  for _, p in ipairs(ps) do
    out[#out + 1] = string.format('"p%s":%d', (tostring(p):gsub("%.", "")), percentile(values, histogram, total, p))
  end
  out[#out + 1] = string.format('"max":%d', values[#values] or 0)
  out[#out + 1] = string.format('"samples":%d', total)
  return "{" .. table.concat(out, ",") .. "}"
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local connections = tonumber(os.getenv("FERRY_WRK_CONNECTIONS") or "1")
  local rate = summary.requests / seconds
  local interval = rate > 0 and math.floor(connections / rate * 1e6 + 0.5) or 0
  local measured = {}
  local corrected = {}
  for i = 1, #latency do
    local value, count = latency(i)
    measured[value] = (measured[value] or 0) + count
    corrected[value] = (corrected[value] or 0) + count
    if interval > 0 then
      local missing = value - interval
      while missing >= interval do
        corrected[missing] = (corrected[missing] or 0) + count
        missing = missing - interval
      end
    end
  end
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationMicros":%d,"errors":%d,"connections":%d,"expectedIntervalMicros":%d,'
      .. '"measured":%s,"corrected":%s}\n', summary.requests, summary.duration,
      e.connect + e.read + e.write + e.status + e.timeout, connections, interval, summarize(measured), summarize(corrected)))
end
