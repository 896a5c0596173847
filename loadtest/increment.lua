-- wrk script: POST /increment with keys spread over KEYS counters (default 10000), value 1.
-- With IDEMPOTENCY=1 every request carries its own Idempotency-Key (unique per thread and run).
-- wrk -t2 -c64 -d10s -s loadtest/increment.lua http://127.0.0.1:3333
local keys = tonumber(os.getenv("KEYS") or "10000")
local path = os.getenv("INCREMENT_PATH") or "/increment"
local idempotent = os.getenv("IDEMPOTENCY") == "1"
local run = os.time()
local counter = 0
local threads = 0

setup = function(thread)
    threads = threads + 1
    thread:set("id", threads)
end

request = function()
    counter = counter + 1
    local body = string.format('{"key":"load-%d","value":1}', (counter * 7919) % keys)
    local headers = { ["Content-Type"] = "application/json" }
    if idempotent then
        headers["Idempotency-Key"] = string.format('"load-%d-%d-%d"', run, id or 0, counter)
    end
    return wrk.format("POST", path, headers, body)
end

done = function(summary, latency, requests)
    io.write(string.format("acknowledged=%d\n", summary.requests - summary.errors.status))
    io.write(string.format("wrk: %d requests, %d errors (status %d, connect %d, read %d, write %d, timeout %d)\n",
        summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
            + summary.errors.write + summary.errors.timeout,
        summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
        summary.errors.timeout))
end
