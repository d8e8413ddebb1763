-- wrk script for the Breakwater target: every request carries the API key,
-- read from the environment so that it is never written into a file here.
local key = os.getenv("BW_BENCH_API_KEY")
if key == nil or key == "" then
  error("BW_BENCH_API_KEY is not set")
end
wrk.headers["X-API-Key"] = key
