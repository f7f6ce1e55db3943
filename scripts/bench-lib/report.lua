-- wrk script of scripts/bench: prints one machine-readable summary line at the end
-- ("WRKJSON {...}", latencies in microseconds). With BENCH_MIX set
-- ("path|widget-id;path|widget-id;..."), requests rotate over those endpoints.
local mix = os.getenv("BENCH_MIX")
if mix and #mix > 0 then
  local targets = {}
  for entry in string.gmatch(mix, "[^;]+") do
    local p, w = string.match(entry, "^(.-)|(.*)$")
    table.insert(targets, { p, w })
  end
  local i = 0
  request = function()
    i = i % #targets + 1
    return wrk.format("GET", targets[i][1], { ["widget-id"] = targets[i][2] })
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
