-- wrk script for loadtest/report.py: deterministic keys, so that the report can tell, per key,
-- how many increments were sent (and check PostgreSQL against it).
--
--   MODE     uniform (default), hot (one key) or zipf (s = 1.1 over KEYS)
--   KEYS     distinct keys (default 10000)
--   PREFIX   key prefix, one per scenario (default "s-")
--   ITEMS    0: POST /increment; N > 0: POST /increments with N items
--   WAIT     1: ?wait=commit
--   READ     1: GET /counters/{PREFIX}{k} of stored keys instead of writes
-- done() prints one line "report: {json}" with the latency percentiles and each thread's count.
local mode = os.getenv("MODE") or "uniform"
local keys = tonumber(os.getenv("KEYS") or "10000")
local prefix = os.getenv("PREFIX") or "s-"
local items = tonumber(os.getenv("ITEMS") or "0")
local wait = os.getenv("WAIT") == "1"
local read = os.getenv("READ") == "1"

local threads = {}
setup = function(thread)
    table.insert(threads, thread)
    thread:set("tid", #threads)
end

-- Zipf's cumulative distribution over ranks 1..keys, built the same way report.py builds it.
local cdf = nil
local function zipf_cdf()
    local weights, total = {}, 0
    for rank = 1, keys do
        local w = 1 / rank ^ 1.1
        weights[rank] = w
        total = total + w
    end
    local running, table_ = 0, {}
    for rank = 1, keys do
        running = running + weights[rank]
        table_[rank] = running / total
    end
    return table_
end

-- The key of the n-th increment of thread tid (both from 1).
local function key_index(t, n)
    if mode == "hot" then return 0 end
    if mode == "zipf" then
        local u = ((n * 2654435761 + t * 40503) % 4294967296) / 4294967296
        local low, high = 1, keys
        while low < high do
            local middle = math.floor((low + high) / 2)
            if cdf[middle] < u then low = middle + 1 else high = middle end
        end
        return low - 1
    end
    return ((n + t * 104729) * 7919) % keys
end

init = function(args)
    if mode == "zipf" then cdf = zipf_cdf() end
    count = 0
    items_sent = 0
    path = items > 0 and "/increments" or (wait and "/increment?wait=commit" or "/increment")
end

request = function()
    count = count + 1
    if read then
        items_sent = items_sent + 1
        return wrk.format("GET", string.format("/counters/%s%d", prefix, key_index(tid, items_sent)))
    end
    local body
    if items > 0 then
        local parts = {}
        for j = 1, items do
            items_sent = items_sent + 1
            parts[j] = string.format('{"key":"%s%d","value":1}', prefix, key_index(tid, items_sent))
        end
        body = '{"increments":[' .. table.concat(parts, ",") .. ']}'
    else
        items_sent = items_sent + 1
        body = string.format('{"key":"%s%d","value":1}', prefix, key_index(tid, items_sent))
    end
    return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
    local sent = {}
    for _, thread in ipairs(threads) do
        table.insert(sent, string.format('[%d,%d]', thread:get("tid"), thread:get("items_sent") or 0))
    end
    local errors = summary.errors
    io.write(string.format(
        'report: {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
        '"p50_us":%d,"p99_us":%d,"p999_us":%d,"sent":[%s]}\n',
        summary.requests, summary.duration, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
        latency:percentile(50), latency:percentile(99), latency:percentile(99.9), table.concat(sent, ",")))
end
