-- Breakwater rate limits: every limit of one request, decided atomically.
-- The arithmetic is decide in gcra.go; see redis.go for the protocol.
--
-- KEYS[i]  the Redis key of limit i.
-- ARGV[1]  now, Unix nanoseconds as 19 digits.
-- ARGV[2]  the TTL slack in milliseconds.
-- Then 4 arguments per limit, from ARGV[3 + 4(i-1)]:
--   "g", now+tau (19 digits, saturated), T (19 digits), ""   a GCRA rate
--   "q", end of window (19 digits), N (19 digits), TTL in ms   a quota
--
-- A stored value is 19 digits of time then "g" (a GCRA TAT), or 19 digits
-- of window end, "q", 19 digits of count (a quota). Anything else counts as
-- no state, as in gcra.go.
--
-- Lua numbers are doubles, exact only below 2^53, so a 19-digit number is
-- handled as two exact parts: hi (the first 10 digits) and lo (the last 9).
--
-- Returns {allowed (1 or 0), previous value of KEYS[1] or "", ...}.

local B = 1000000000
local MAXH, MAXL = 9223372036, 854775807 -- math.MaxInt64
local DIGITS = '^' .. string.rep('%d', 19) .. '$'

local function split(s)
  return tonumber(string.sub(s, 1, 10)), tonumber(string.sub(s, 11, 19))
end

local function valid(s)
  if not string.find(s, DIGITS) then
    return false
  end
  local h, l = split(s)
  return h < MAXH or (h == MAXH and l <= MAXL)
end

local function less(h1, l1, h2, l2)
  return h1 < h2 or (h1 == h2 and l1 < l2)
end

local function add(h1, l1, h2, l2) -- saturating at math.MaxInt64
  local h, l = h1 + h2, l1 + l2
  if l >= B then
    h, l = h + 1, l - B
  end
  if less(MAXH, MAXL, h, l) then
    return MAXH, MAXL
  end
  return h, l
end

local function fmt(h, l)
  return string.format('%010d%09d', h, l)
end

local nowS = ARGV[1]
local nh, nl = split(nowS)
local slack = tonumber(ARGV[2])
local maxTTL = 1099511627776 -- 2^40 ms, about 34 years

local prev, vals, ttls = {}, {}, {}
local allowed = 1
for i = 1, #KEYS do
  local a = 3 + 4 * (i - 1)
  local kind = ARGV[a]
  local v = redis.call('GET', KEYS[i])
  if not v then
    v = ''
  end
  prev[i] = v
  if kind == 'g' then
    local th, tl = nh, nl
    if #v == 20 and string.sub(v, 20, 20) == 'g' then
      local e = string.sub(v, 1, 19)
      if valid(e) then
        local eh, el = split(e)
        if less(nh, nl, eh, el) then
          th, tl = eh, el
        end
      end
    end
    local lh, ll = split(ARGV[a + 1])
    if less(lh, ll, th, tl) then -- TAT - now > tau
      allowed = 0
    else
      local xh, xl = split(ARGV[a + 2])
      local h, l = add(th, tl, xh, xl)
      vals[i] = fmt(h, l) .. 'g'
      ttls[i] = (h - nh) * 1000 + math.ceil((l - nl) / 1000000)
    end
  else
    local endS = ARGV[a + 1]
    local ch, cl = 0, 0
    if #v == 39 and string.sub(v, 20, 20) == 'q' and string.sub(v, 1, 19) == endS then
      local c = string.sub(v, 21, 39)
      if valid(c) then
        ch, cl = split(c)
      end
    end
    local qh, ql = split(ARGV[a + 2])
    if not less(ch, cl, qh, ql) then -- count >= N
      allowed = 0
    else
      local h, l = add(ch, cl, 0, 1)
      vals[i] = endS .. 'q' .. fmt(h, l)
      ttls[i] = tonumber(ARGV[a + 3])
    end
  end
end

if allowed == 1 then
  for i = 1, #KEYS do
    local ttl = math.min(math.max(ttls[i], 0) + slack, maxTTL)
    redis.call('SET', KEYS[i], vals[i], 'PX', string.format('%d', ttl))
  end
end

local out = { allowed }
for i = 1, #KEYS do
  out[i + 1] = prev[i]
end
return out
