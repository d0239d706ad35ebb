package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/store"
)

// maxAcquireBatch bounds how many Acquire calls share one script call.
const maxAcquireBatch = 128

// Acquire calls that arrive while one batch is in Redis wait and go
// together in the next: one round trip and one script call for all of
// them, so a busy proxy pays a fraction of a Redis call per limited
// request, and an idle one pays no wait (a lone call goes at once).
type acquireCall struct {
	id       string
	max      int64
	deadline time.Time // the caller's; zero for none
	done     chan acquireAnswer
}

type acquireAnswer struct {
	count int64
	ok    bool
	err   error
}

// scriptAcquireMany: KEYS meta, keys, req, this instance's tally; ARGV
// epoch, tally TTL (s), then pairs of key id and max. For each pair, in
// order, it counts one request if fewer than max are counted, and answers
// a pair: "ok", the count; "full", the count; or "gone", "0" for a deleted
// key. The tally (key id → requests this instance counted) tells, after a
// lost answer, whether the requests were counted.
var scriptAcquireMany = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
local out = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[2], id) == 0 then
    out[#out + 1] = 'gone'
    out[#out + 1] = '0'
  else
    local r = tonumber(redis.call('HGET', KEYS[3], id) or '0')
    if r >= tonumber(ARGV[i + 1]) then
      out[#out + 1] = 'full'
      out[#out + 1] = tostring(r)
    else
      redis.call('HINCRBY', KEYS[3], id, 1)
      redis.call('HINCRBY', KEYS[4], id, 1)
      out[#out + 1] = 'ok'
      out[#out + 1] = tostring(r + 1)
    end
  end
end
redis.call('EXPIRE', KEYS[4], ARGV[2])
return out
`)

// Acquire counts one request of key id if fewer than max are counted, in
// one atomic step in Redis, and returns the count: instances together
// never count more than max. A deleted key is refused. Calls from many
// goroutines are batched (see acquireCall); each still gets its own
// answer, in the order the batch ran them.
func (s *Store) Acquire(ctx context.Context, id string, max int64) (int64, bool, error) {
	if _, err := s.ready(ctx, "acquire"); err != nil {
		return 0, false, err
	}
	c := &acquireCall{id: id, max: max, done: make(chan acquireAnswer, 1)}
	c.deadline, _ = ctx.Deadline()
	select {
	case s.acquireQ <- c:
	case <-s.stop:
		return 0, false, errClosed("acquire")
	}
	select {
	case a := <-c.done:
		return a.count, a.ok, a.err
	case <-s.stop:
		return 0, false, errClosed("acquire")
	}
}

func errClosed(op string) error {
	return fmt.Errorf("redisstore: %s: the store is closed: %w", op, store.ErrUnavailable)
}

// acquireLoop runs the queued Acquire calls, as many as wait (up to
// maxAcquireBatch) in one script call at a time.
func (s *Store) acquireLoop() {
	batch := make([]*acquireCall, 0, maxAcquireBatch)
	for {
		select {
		case c := <-s.acquireQ:
			batch = append(batch[:0], c)
		case <-s.stop:
			return
		}
	fill:
		for len(batch) < maxAcquireBatch {
			select {
			case c := <-s.acquireQ:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.acquireMany(batch)
		clear(batch)
	}
}

// acquireMany runs one batch and answers every call in it. It waits no
// longer than the earliest caller's deadline.
func (s *Store) acquireMany(batch []*acquireCall) {
	answer := func(a acquireAnswer) {
		for _, c := range batch {
			c.done <- a
		}
	}
	ctx := context.Background()
	var earliest time.Time
	for _, c := range batch {
		if !c.deadline.IsZero() && (earliest.IsZero() || c.deadline.Before(earliest)) {
			earliest = c.deadline
		}
	}
	if !earliest.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, earliest)
		defer cancel()
	}
	epoch, err := s.ready(ctx, "acquire")
	if err != nil {
		answer(acquireAnswer{err: err})
		return
	}
	args := make([]any, 0, 2+2*len(batch))
	args = append(args, epoch, int(tallyTTL/time.Second))
	for _, c := range batch {
		args = append(args, c.id, c.max)
	}
	res, err := s.run(ctx, "acquire", scriptAcquireMany, []string{s.n.meta, s.n.keys, s.n.req, s.n.inst + s.instance}, args...)
	if err == nil && len(res) != 2*len(batch) {
		err = fmt.Errorf("redisstore: acquire: %d answers to %d calls", len(res)/2, len(batch))
	}
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			// Maybe counted (the answer was lost): the monitor looks
			// them up before the store is up again.
			s.acqMu.Lock()
			for _, c := range batch {
				s.unknown[c.id]++
			}
			s.acqMu.Unlock()
		}
		answer(acquireAnswer{err: err})
		return
	}
	s.acqMu.Lock()
	for i, c := range batch {
		if res[2*i] == "ok" {
			s.confirmed[c.id]++
		}
	}
	s.acqMu.Unlock()
	for i, c := range batch {
		n, _ := strconv.ParseInt(res[2*i+1], 10, 64)
		c.done <- acquireAnswer{count: n, ok: res[2*i] == "ok"}
	}
}
