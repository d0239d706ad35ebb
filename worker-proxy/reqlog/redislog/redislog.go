// Package redislog is the request log's store in one Redis stream that
// every instance of a pool shares (STORE=redis).
package redislog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// Redis is a Store in one Redis stream that every instance of a pool
// shares (STORE=redis): one entry per record, field "r" holding its JSON.
// Redis gives each entry its ID (milliseconds-sequence), so instances
// appending at once never clash; a record's ID is its entry's,
// milliseconds × 1,000,000 + sequence. Each Append is one pipeline that
// adds the batch and trims the stream to Max entries and MaxAge.
type Redis struct {
	c   redis.UniversalClient
	key string
	b   reqlog.Bounds
	now func() time.Time
}

var _ reqlog.Store = (*Redis)(nil)

// New returns a Store in the stream key; b.Max defaults to
// DefaultMax. now is the clock for MaxAge (nil: time.Now). c stays the
// caller's.
func New(c redis.UniversalClient, key string, b reqlog.Bounds, now func() time.Time) *Redis {
	if now == nil {
		now = time.Now
	}
	return &Redis{c: c, key: key, b: b.WithDefaults(reqlog.DefaultMax), now: now}
}

const redisTimeout = 10 * time.Second

// Append adds recs and trims the stream.
func (s *Redis) Append(recs []adminapi.RequestRecord) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range recs {
			r.ID = ""
			v, err := reqlog.AppendRecord(nil, &r)
			if err != nil {
				return err
			}
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.key, ID: "*", Values: []any{"r", v}})
		}
		p.XTrimMaxLen(ctx, s.key, int64(s.b.Max))
		p.XTrimMinID(ctx, s.key, strconv.FormatInt(s.now().Add(-s.b.MaxAge).UnixMilli(), 10))
		return nil
	})
	if err != nil {
		return fmt.Errorf("request log: redis append: %w", err)
	}
	return nil
}

// streamID turns an entry ID ("1700000000000-3") into a record ID.
func streamID(id string) (uint64, bool) {
	ms, seq, ok := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || q >= 1_000_000 {
		return 0, false
	}
	return m*1_000_000 + q, true
}

// entryID is the stream ID of a record ID.
func entryID(id uint64) string {
	return strconv.FormatUint(id/1_000_000, 10) + "-" + strconv.FormatUint(id%1_000_000, 10)
}

// Query reads the stream backwards from the cursor, in chunks.
func (s *Redis) Query(f reqlog.Filter) ([]adminapi.RequestRecord, string, error) {
	end := "+"
	if f.Cursor != "" {
		c, err := reqlog.ParseID(f.Cursor)
		if err != nil {
			return nil, "", reqlog.ErrBadFilter
		}
		end = "(" + entryID(c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	limit := f.PageLimit()
	stopMs := max(uint64(f.StopAt())/1_000_000, uint64(s.now().Add(-s.b.MaxAge).UnixMilli()))
	var out []adminapi.RequestRecord
	scanned := 0
	for {
		chunk := int64(min(max(limit*2, 100), 1000))
		msgs, err := s.c.XRevRangeN(ctx, s.key, end, "-", chunk).Result()
		if err != nil {
			return nil, "", fmt.Errorf("request log: redis query: %w", err)
		}
		for _, m := range msgs {
			id, ok := streamID(m.ID)
			if !ok {
				continue
			}
			if id/1_000_000 < stopMs {
				return out, "", nil
			}
			if scanned++; scanned > reqlog.ScanBudget {
				return out, reqlog.FormatID(id + 1), nil
			}
			raw, _ := m.Values["r"].(string)
			var r adminapi.RequestRecord
			if json.Unmarshal([]byte(raw), &r) != nil {
				continue
			}
			r.ID = reqlog.FormatID(id)
			if !f.Match(&r) {
				continue
			}
			if len(out) == limit {
				return out, out[len(out)-1].ID, nil
			}
			out = append(out, r)
		}
		if int64(len(msgs)) < chunk {
			return out, "", nil
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
}

// LastID is the newest entry's record ID.
func (s *Redis) LastID() uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	msgs, err := s.c.XRevRangeN(ctx, s.key, "+", "-", 1).Result()
	if err != nil || len(msgs) == 0 {
		return 0
	}
	id, _ := streamID(msgs[0].ID)
	return id
}

// Bounds says how much the store keeps.
func (s *Redis) Bounds() reqlog.Bounds { return s.b }

// Close does nothing: the client is the caller's.
func (s *Redis) Close() error { return nil }
