-- wrk script of cmd/bench-http: every request is a distinct Alertmanager
-- webhook delivery, byte for byte the body of benchenv.Payload (a new group
-- per request, N firing alerts started a minute ago, the services api,
-- checkout, payments and search in turn), and done() prints what the
-- benchmark reads (benchenv.RunWrk parses it).
--
--   wrk -t T -c C -d D -s webhook.lua URL -- PREFIX ALERTS THREADS [RUNBOOK_URL]
--
-- Thread t (1-based) of T sends deliveries t, t+T, t+2T, ...: distinct
-- group keys and fingerprints across threads without sharing a counter.

local services = { "api", "checkout", "payments", "search" }
local name = "HighErrorRate"

-- Set per thread by setup() (in the thread's own Lua state) and init().
tid = tid or 1
non2xx = 0
first_error = ""

local prefix, nalerts, nthreads, annotations
local seq
local stamp_sec, stamp = -1, ""

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1]
  nalerts = tonumber(args[2])
  nthreads = tonumber(args[3])
  local runbook = args[4] or ""
  if runbook ~= "" then
    annotations = '"annotations":{"runbook_url":"' .. runbook .. '","summary":"error rate above 5%"}'
  else
    annotations = '"annotations":{"summary":"error rate above 5%"}'
  end
  seq = tid - nthreads
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

-- startsAt: a minute ago, whole seconds, UTC (as time.Time marshals it).
local function starts_at()
  local now = os.time()
  if now ~= stamp_sec then
    stamp_sec = now
    stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 60)
  end
  return stamp
end

function request()
  seq = seq + nthreads
  local i = seq
  local svc = services[i % 4 + 1]
  local group = prefix .. "-" .. i
  local start = starts_at()
  local b = {
    '{"version":"4","groupKey":"{}:{alertname=\\"', name, '\\", group=\\"', group, '\\", service=\\"', svc,
    '\\"}","truncatedAlerts":0,"status":"firing","receiver":"sred","groupLabels":{"alertname":"', name,
    '","group":"', group, '","service":"', svc, '"},"commonLabels":{"alertname":"', name,
    '","group":"', group, '","service":"', svc, '","severity":"critical"},"commonAnnotations":{"summary":"error rate above 5%"},',
    '"externalURL":"http://127.0.0.1:9093","alerts":[',
  }
  for j = 0, nalerts - 1 do
    if j > 0 then b[#b + 1] = "," end
    b[#b + 1] = string.format(
      '{"status":"firing","labels":{"alertname":"%s","group":"%s","instance":"10.0.%d.%d:8080","service":"%s","severity":"critical"},%s,"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:9090/graph","fingerprint":"%012x%04x"}',
      name, group, math.floor(j / 256), j % 256, svc, annotations, start, i, j)
  end
  b[#b + 1] = "]}"
  return wrk.format(nil, nil, nil, table.concat(b))
end

-- wrk itself counts only statuses above 399; the durability check needs
-- the exact number of 2xx answers.
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = status .. " " .. string.gsub(body or "", "%s+", " ")
    end
  end
end

-- One line of totals, then one line per latency (microseconds) with its
-- count. wrk has already "corrected" its latency histogram for coordinated
-- omission when done() runs, and its Lua interface gives only percentiles
-- of it, so the histogram is read whole through LuaJIT's FFI (wrk's
-- struct stats, src/stats.h of wrk 4.x) and RunWrk takes the correction
-- back out. The read checks itself against what the interface says (min,
-- max, the sum of the counts); when it does not match, or FFI is missing,
-- only wrk's corrected percentiles are printed, and RunWrk says so.
local ffi_ok, ffi = pcall(require, "ffi")
if ffi_ok then
  ffi_ok = pcall(ffi.cdef, [[
    typedef struct { uint64_t count; uint64_t limit; uint64_t min; uint64_t max; uint64_t data[]; } rootuip_wrk_stats;
  ]])
end

local function histogram(latency)
  if not ffi_ok then return nil end
  local ok, st = pcall(function() return ffi.cast("rootuip_wrk_stats **", latency)[0] end)
  if not ok then return nil end
  local lo, hi = tonumber(st.min), tonumber(st.max)
  if lo ~= latency.min or hi ~= latency.max or hi >= tonumber(st.limit) then return nil end
  local lines, n = {}, 0
  for us = lo, hi do
    local c = tonumber(st.data[us])
    if c > 0 then
      n = n + c
      lines[#lines + 1] = string.format("wrk-latency %d %d\n", us, c)
    end
  end
  if n ~= tonumber(st.count) then return nil end
  return lines
end

function done(summary, latency, requests)
  local n, first = 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    local e = t:get("first_error")
    if first == "" and e ~= nil and e ~= "" then first = e end
  end
  local e = summary.errors
  io.write(string.format("wrk-result requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, n, e.connect, e.read, e.write, e.timeout))
  if first ~= "" then
    io.write("wrk-first-error ", first, "\n")
  end
  if summary.requests == 0 then return end
  io.write(string.format("wrk-corrected p50=%d p99=%d max=%d\n", latency:percentile(50), latency:percentile(99), latency.max))
  local lines = histogram(latency)
  if lines then io.write(table.concat(lines)) end
end
