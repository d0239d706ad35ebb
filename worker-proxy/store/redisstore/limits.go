package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/limits"
)

// Client token windows live in {prefix}lim:<token id>, a hash of the four
// budgets' theoretical arrival times in unix microseconds (Lua numbers are
// doubles: nanoseconds would lose precision), expiring two days after the
// last change. One script per step keeps every instance's view exact.
// Times come from the calling instance's clock: instances should run NTP.

var _ limits.Shared = (*Store)(nil)

// scriptLimits: KEYS token hash; ARGV mode ("admit" or "tokens"), now
// (unix µs), tokens, rpm, rpd, tpm, tpd, TTL (s). "admit" answers {"ok"} or
// {"no", budget index 1–4, wait µs}; "tokens" answers {"ok"}. The same GCRA
// as limits.Limiter.
var scriptLimits = redis.NewScript(`
local W = {60000000, 86400000000, 60000000, 86400000000}
local f = {'rpm', 'rpd', 'tpm', 'tpd'}
local now = tonumber(ARGV[2])
local tat = redis.call('HMGET', KEYS[1], 'rpm', 'rpd', 'tpm', 'tpd')
local function interval(i, n) return math.max(1, math.floor(W[i] / n)) end
if ARGV[1] == 'admit' then
  local worst, which, nextv = 0, 0, {}
  for i = 1, 4 do
    local n = tonumber(ARGV[3 + i])
    if n > 0 then
      local t = interval(i, n)
      local x = math.max(tonumber(tat[i] or '0'), now)
      local wait = x + t - W[i] - now
      if wait > 0 then
        if wait > worst then worst, which = wait, i end
      elseif i <= 2 then
        nextv[i] = x + t
      end
    end
  end
  if which > 0 then return {'no', tostring(which), string.format('%.0f', worst)} end
  local set = false
  for i = 1, 2 do
    if nextv[i] then redis.call('HSET', KEYS[1], f[i], string.format('%.0f', nextv[i])); set = true end
  end
  if set then redis.call('EXPIRE', KEYS[1], ARGV[8]) end
  return {'ok'}
end
local n = tonumber(ARGV[3])
for i = 3, 4 do
  local v = tonumber(ARGV[3 + i])
  if v > 0 then
    local t = interval(i, v)
    local x = math.max(tonumber(tat[i] or '0'), now)
    local ceil = now + 2 * W[i] - t
    redis.call('HSET', KEYS[1], f[i], string.format('%.0f', math.min(x + n * t, ceil)))
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
return {'ok'}
`)

const limitsTTL = 2 * 24 * time.Hour

func (s *Store) limitKey(id string) string { return s.n.lim + id }

func limitArgs(mode string, lim limits.Limits, n int64, now time.Time) []any {
	v := lim.Values()
	return []any{mode, now.UnixMicro(), n, v[0], v[1], v[2], v[3], int(limitsTTL / time.Second)}
}

// AdmitShared runs limits.Limiter.Admit's step on the windows every
// instance shares.
func (s *Store) AdmitShared(ctx context.Context, id string, lim limits.Limits, now time.Time) (limits.Decision, error) {
	if s.down.Load() {
		return limits.Decision{}, fmt.Errorf("redisstore: admit: redis is unreachable")
	}
	res, err := scriptLimits.Run(ctx, s.c, []string{s.limitKey(id)}, limitArgs("admit", lim, 0, now)...).StringSlice()
	if err != nil {
		return limits.Decision{}, fmt.Errorf("redisstore: admit: %w", s.wrap(err))
	}
	if len(res) == 3 && res[0] == "no" {
		i, err1 := strconv.Atoi(res[1])
		wait, err2 := strconv.ParseInt(res[2], 10, 64)
		if err1 != nil || err2 != nil || i < 1 || i > 4 {
			return limits.Decision{}, fmt.Errorf("redisstore: admit: unexpected answer %q", res)
		}
		return limits.Decision{Budget: limits.Budgets[i-1], Limit: lim.Values()[i-1], RetryAfter: time.Duration(wait) * time.Microsecond}, nil
	}
	return limits.Decision{OK: true}, nil
}

// AddTokensShared runs limits.Limiter.AddTokens's step on the shared
// windows.
func (s *Store) AddTokensShared(ctx context.Context, id string, lim limits.Limits, n int64, now time.Time) error {
	if s.down.Load() {
		return fmt.Errorf("redisstore: add tokens: redis is unreachable")
	}
	if err := scriptLimits.Run(ctx, s.c, []string{s.limitKey(id)}, limitArgs("tokens", lim, n, now)...).Err(); err != nil {
		return fmt.Errorf("redisstore: add tokens: %w", s.wrap(err))
	}
	return nil
}

// ForgetShared drops a token's shared windows.
func (s *Store) ForgetShared(ctx context.Context, id string) error {
	if err := s.c.Del(ctx, s.limitKey(id)).Err(); err != nil {
		return fmt.Errorf("redisstore: forget limits: %w", s.wrap(err))
	}
	return nil
}
