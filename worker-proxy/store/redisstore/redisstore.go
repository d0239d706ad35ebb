// Package redisstore is the Store that many proxy instances share live: a
// Redis server (single, Cluster or Sentinel; see NewClient).
//
// # Key layout
//
// Every Redis key of a pool starts with the hash tag {<prefix>} (prefix
// REDIS_PREFIX, default "keypool:"), so one pool lives in one Cluster slot
// and its Lua scripts may touch all its keys, and several pools with
// different prefixes share one server:
//
//	{keypool:}meta     hash: schema ("1"), epoch (random, per data set), cver, uver (change counters)
//	{keypool:}keys     hash: key id → JSON of pool.Key
//	{keypool:}fp       hash: secret fingerprint → key id (the duplicate check)
//	{keypool:}keyfp    hash: key id → its secret's fingerprint
//	{keypool:}rev      hash: key id → revision
//	{keypool:}req, ok, fail  hashes: key id → requests, successes, failures
//	{keypool:}ptok, ctok  hashes: key id → prompt, completion tokens
//	{keypool:}lim:<id>  hash: a client token's limit windows (limits.go)
//	{keypool:}used     hash: key id → last use, unix ns (19 digits)
//	{keypool:}lasterr  hash: key id → "<unix ns>|JSON of pool.LastError"
//	{keypool:}tokens   hash: token id → JSON of pool.ClientToken
//	{keypool:}rest     hash: key id → "<until, unix ns>|reason" (shared cooldowns)
//	{keypool:}flush:<id>  string, 24 h: a usage flush that was applied
//	{keypool:}inst:<id>   hash, 7 days: key id → requests this instance counted through Acquire
//	{keypool:}events   pub/sub channel: "<instance>|<what changed>"
//
// Every write is one Lua script, so it is atomic: PutKeys checks
// revisions and duplicate secrets inside Redis before writing anything.
// Acquire counts a limited key's request and checks its maxRequests in one
// script, so instances together never pass the limit while Redis answers;
// the calls that arrive while one is in Redis go together in the next
// (acquire.go), so a busy proxy pays a fraction of a round trip each.
//
// # Outages
//
// A connection error or timeout marks the store down (Health says since
// when): calls then fail at once with store.ErrUnavailable, and a monitor
// pings Redis with backoff (100 ms doubling to 5 s) until it answers. Usage
// flushes carry an id, so a flush whose answer was lost is never applied
// twice; an Acquire whose answer was lost is looked up in the instance's
// tally before the store is up again, and the caller told (Counted) which
// of the requests it counted locally Redis had counted too. A Redis that
// comes back without the pool's epoch lost its data:
// Sync returns store.ErrLost and the proxy writes its copy back (Restore).
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/store"
)

// SchemaVersion is the layout version this package reads and writes.
const SchemaVersion = "1"

// DefaultPrefix is REDIS_PREFIX's default.
const DefaultPrefix = "keypool:"

// flushTTL is how long an applied flush's marker is kept: far longer than
// any retry of the same flush.
const flushTTL = 24 * time.Hour

// Config configures a Store.
type Config struct {
	// URL is the server's URL (see NewClient). Ignored if Client is set.
	URL string
	// Client, if set, is used instead of a client made from URL; Close
	// closes it.
	Client redis.UniversalClient
	// Prefix starts every Redis key (inside a hash tag); default
	// DefaultPrefix. It must not contain braces.
	Prefix string
	// Logger hears of outages and reconnections. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// names are the pool's Redis keys.
type names struct {
	meta, keys, fp, keyfp, rev, req, ok, fail, used, lasterr, tokens, rest, events, flush string
	ptok, ctok, lim, inst                                                                 string
}

func newNames(prefix string) names {
	t := "{" + prefix + "}"
	return names{
		meta: t + "meta", keys: t + "keys", fp: t + "fp", keyfp: t + "keyfp", rev: t + "rev",
		req: t + "req", ok: t + "ok", fail: t + "fail", used: t + "used", lasterr: t + "lasterr",
		tokens: t + "tokens", rest: t + "rest", events: t + "events", flush: t + "flush:",
		ptok: t + "ptok", ctok: t + "ctok", lim: t + "lim:", inst: t + "inst:",
	}
}

// Store is a store.Live over Redis. It is safe for concurrent use.
type Store struct {
	cfg      Config
	c        redis.UniversalClient
	n        names
	instance string // tags this store's events, to skip its own

	changed chan struct{}
	kick    chan struct{} // wakes the monitor
	stop    chan struct{}
	wg      sync.WaitGroup
	ps      *redis.PubSub

	mu       sync.Mutex // guards epoch, lost, the sync counters
	epoch    string
	lost     bool // the data is gone; writes wait for Restore
	synced   bool
	lastVers string
	forced   bool // an event arrived since the last Sync

	flushMu sync.Mutex        // serializes AddUsage and ResetUsage
	pending *flush            // a flush whose outcome is unknown
	applied []pool.UsageDelta // flushes applied that the caller thinks failed

	down    atomic.Bool // calls fail fast until the monitor reconnects
	healthM sync.Mutex  // guards health
	health  store.Health
	closed  atomic.Bool

	acqMu     sync.Mutex       // guards confirmed, unknown and counted
	confirmed map[string]int64 // Acquire answered ok, by key id
	unknown   map[string]int64 // Acquire got no answer, by key id
	counted   func(id string, n int64)
	acquireQ  chan *acquireCall // Acquire calls waiting for the next batch
}

// tallyTTL is how long an instance's Acquire tally lives after its last
// use.
const tallyTTL = 7 * 24 * time.Hour

type flush struct {
	id     string
	deltas []pool.UsageDelta
}

var (
	_ store.Live           = (*Store)(nil)
	_ store.HealthReporter = (*Store)(nil)
)

// Open connects to Redis, creates the pool's meta record if the pool is
// new, and starts listening for other instances' changes. It fails if
// Redis does not answer, or holds the pool in another schema version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain braces (the store puts it in a hash tag itself)", cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := cfg.Client
	if c == nil {
		var err error
		if c, err = NewClient(cfg.URL); err != nil {
			return nil, err
		}
	}
	s := &Store{
		cfg: cfg, c: c, n: newNames(cfg.Prefix), instance: randomID(),
		changed: make(chan struct{}, 1), kick: make(chan struct{}, 1), stop: make(chan struct{}),
		health:    store.Health{OK: true, Since: cfg.Now()},
		confirmed: map[string]int64{}, unknown: map[string]int64{},
		acquireQ: make(chan *acquireCall, maxAcquireBatch),
	}
	res, err := scriptMeta.Run(ctx, c, []string{s.n.meta}, SchemaVersion, randomID()).StringSlice()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("redisstore: open %s: %w", s.where(), s.wrap(err))
	}
	if res[0] != SchemaVersion {
		c.Close()
		return nil, fmt.Errorf("redisstore: open %s: the pool under prefix %q has schema version %q, this program reads %q", s.where(), cfg.Prefix, res[0], SchemaVersion)
	}
	s.epoch = res[1]
	s.ps = c.Subscribe(ctx, s.n.events)
	if _, err := s.ps.Receive(ctx); err != nil { // the subscription's confirmation
		s.ps.Close()
		c.Close()
		return nil, fmt.Errorf("redisstore: subscribe to %s: %w", s.n.events, s.wrap(err))
	}
	s.wg.Go(s.listen)
	s.wg.Go(s.monitor)
	s.wg.Go(s.acquireLoop)
	return s, nil
}

// where names the server without its password.
func (s *Store) where() string {
	if s.cfg.URL != "" {
		return Redacted(s.cfg.URL)
	}
	return "redis"
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Changed receives a value soon after another instance changed keys,
// tokens, usage resets or rests, and after Redis comes back from an
// outage.
func (s *Store) Changed() <-chan struct{} { return s.changed }

func (s *Store) signal() {
	s.mu.Lock()
	s.forced = true
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// listen turns other instances' events into signals on Changed. The
// subscription reconnects by itself; a reconnection is signalled too,
// since events may have been missed meanwhile.
func (s *Store) listen() {
	ch := s.ps.ChannelWithSubscriptions()
	for {
		select {
		case <-s.stop:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Message:
				if from, _, _ := strings.Cut(m.Payload, "|"); from == s.instance {
					continue
				}
				s.signal()
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					s.signal() // (re)subscribed: something may have been missed
				}
			}
		}
	}
}

// publish tells other instances what changed. A lost event is repaired by
// their periodic Sync.
func (s *Store) publish(ctx context.Context, what string) {
	if err := s.c.Publish(ctx, s.n.events, s.instance+"|"+what).Err(); err != nil {
		s.fail(err)
	}
}

// isConnErr reports whether err means Redis could not be reached or did
// not answer in time, rather than refusing a command.
func isConnErr(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) || errors.Is(err, net.ErrClosed) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "connection refused", "connection reset", "broken pipe", "i/o timeout", "pool timeout"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// wrap gives a connection error store.ErrUnavailable and marks the store
// down; other errors pass through.
func (s *Store) wrap(err error) error {
	if err == nil {
		return nil
	}
	if isConnErr(err) {
		s.fail(err)
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return err
}

// fail marks the store down after a connection error.
func (s *Store) fail(err error) {
	if !isConnErr(err) || s.closed.Load() {
		return
	}
	s.healthM.Lock()
	if s.health.OK {
		s.health = store.Health{Since: s.cfg.Now()}
		s.cfg.Logger.Warn("redis unreachable; serving from memory and reconnecting", "redis", s.where(), "err", err)
	}
	s.health.Detail = "Redis unreachable or too slow (" + err.Error() + "); serving from memory, counts kept for later, admin changes refused"
	s.healthM.Unlock()
	s.down.Store(true)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// monitor reconnects after an outage: while the store is down it pings
// Redis with backoff, and marks it up again when it answers.
func (s *Store) monitor() {
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
		}
		backoff := 100 * time.Millisecond
		for s.down.Load() {
			select {
			case <-s.stop:
				return
			case <-time.After(backoff):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := s.c.Ping(ctx).Err()
			if err == nil {
				err = s.resolveAcquires(ctx)
			}
			cancel()
			if err == nil {
				s.healthM.Lock()
				s.cfg.Logger.Info("redis reachable again", "redis", s.where(), "down", s.cfg.Now().Sub(s.health.Since).Round(time.Millisecond).String())
				s.health = store.Health{OK: true, Since: s.cfg.Now()}
				s.healthM.Unlock()
				s.down.Store(false)
				s.signal()
				break
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

// Counted sets what hears, when Redis answers again, that n requests of
// key id which Acquire failed on (and the caller counted locally) were
// counted in Redis after all.
func (s *Store) Counted(f func(id string, n int64)) {
	s.acqMu.Lock()
	defer s.acqMu.Unlock()
	s.counted = f
}

// resolveAcquires finds out, from this instance's tally, which Acquire
// calls that got no answer Redis counted, and tells the caller. It runs
// while the store is down, so no Acquire runs meanwhile.
func (s *Store) resolveAcquires(ctx context.Context) error {
	s.acqMu.Lock()
	defer s.acqMu.Unlock()
	for id := range s.unknown {
		n, err := s.c.HGet(ctx, s.n.inst+s.instance, id).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if applied := n - s.confirmed[id]; applied > 0 {
			s.confirmed[id] = n
			if s.counted != nil {
				s.counted(id, applied)
			}
		}
		delete(s.unknown, id)
	}
	return nil
}

// Health reports whether Redis answers, and since when.
func (s *Store) Health() store.Health {
	s.healthM.Lock()
	defer s.healthM.Unlock()
	return s.health
}

// ready fails fast while the store is down or its data lost.
func (s *Store) ready(ctx context.Context, op string) (epoch string, err error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("redisstore: %s: %w", op, err)
	}
	if s.down.Load() {
		return "", fmt.Errorf("redisstore: %s: redis is unreachable: %w", op, store.ErrUnavailable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return "", fmt.Errorf("redisstore: %s: redis lost its data and the pool is being written back: %w", op, store.ErrUnavailable)
	}
	return s.epoch, nil
}

// run runs a write script and interprets its status answer.
func (s *Store) run(ctx context.Context, op string, sc *redis.Script, keys []string, args ...any) ([]string, error) {
	res, err := sc.Run(ctx, s.c, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: %s: %w", op, s.wrap(err))
	}
	if len(res) > 0 && res[0] == "lost" {
		// Lost, unless the call was based on an epoch already replaced
		// (this store restored the data meanwhile).
		s.mu.Lock()
		stale := len(args) > 0 && args[0] != s.epoch
		s.mu.Unlock()
		if !stale {
			s.markLost()
		}
		return nil, fmt.Errorf("redisstore: %s: redis lost its data: %w", op, store.ErrUnavailable)
	}
	return res, nil
}

func (s *Store) markLost() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lost {
		s.lost = true
		s.cfg.Logger.Error("redis lost the pool's data (restarted without persistence?); writing this instance's copy back", "redis", s.where())
	}
	s.forced = true
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Load returns everything the pool holds, read in one transaction.
func (s *Store) Load(ctx context.Context) (*store.Contents, error) {
	if _, err := s.ready(ctx, "load"); err != nil {
		return nil, err
	}
	c, _, err := s.load(ctx)
	return c, err
}

func (s *Store) load(ctx context.Context) (*store.Contents, string, error) {
	var cmds []*redis.MapStringStringCmd
	var epoch *redis.StringCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range []string{s.n.keys, s.n.req, s.n.ok, s.n.fail, s.n.used, s.n.lasterr, s.n.tokens, s.n.rest, s.n.ptok, s.n.ctok} {
			cmds = append(cmds, p.HGetAll(ctx, k))
		}
		epoch = p.HGet(ctx, s.n.meta, "epoch")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("redisstore: load: %w", s.wrap(err))
	}
	ep, _ := epoch.Result()
	m := func(i int) map[string]string { return cmds[i].Val() }
	keys, req, ok, fail, used, lasterr, tokens, rest := m(0), m(1), m(2), m(3), m(4), m(5), m(6), m(7)
	ptok, ctok := m(8), m(9)
	c := &store.Contents{Usage: make(map[string]pool.Usage, len(req)), Keys: make([]pool.Key, 0, len(keys)), Rests: map[string]store.Rest{}}
	for id, v := range keys {
		var k pool.Key
		if err := json.Unmarshal([]byte(v), &k); err != nil {
			return nil, "", fmt.Errorf("redisstore: load: key %q: %w", id, err)
		}
		c.Keys = append(c.Keys, k)
		var u pool.Usage
		has := false
		num := func(h map[string]string, dst *int64) {
			if v, found := h[id]; found {
				*dst, _ = strconv.ParseInt(v, 10, 64)
				has = true
			}
		}
		num(req, &u.Requests)
		num(ok, &u.Successes)
		num(fail, &u.Failures)
		num(ptok, &u.PromptTokens)
		num(ctok, &u.CompletionTokens)
		if v, found := used[id]; found {
			if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
				u.LastUsed, has = time.Unix(0, ns).UTC(), true
			}
		}
		if v, found := lasterr[id]; found && len(v) > 20 {
			var le pool.LastError
			if err := json.Unmarshal([]byte(v[20:]), &le); err != nil {
				return nil, "", fmt.Errorf("redisstore: load: last error of key %q: %w", id, err)
			}
			u.LastError, has = &le, true
		}
		if has {
			c.Usage[id] = u
		}
		if v, found := rest[id]; found && len(v) >= 20 {
			if ns, err := strconv.ParseInt(v[:19], 10, 64); err == nil {
				c.Rests[id] = store.Rest{Until: time.Unix(0, ns).UTC(), Reason: v[20:]}
			}
		}
	}
	for id, v := range tokens {
		var t pool.ClientToken
		if err := json.Unmarshal([]byte(v), &t); err != nil {
			return nil, "", fmt.Errorf("redisstore: load: token %q: %w", id, err)
		}
		c.Tokens = append(c.Tokens, t)
	}
	return c, ep, nil
}

// Sync returns the pool's contents when another instance may have changed
// them (an event, or the change counters moved) and always on the first
// call; nil when nothing changed. A pending usage flush is retried first.
// It returns an error matching store.ErrLost once when Redis lost the
// pool's data; the caller should Restore its copy.
func (s *Store) Sync(ctx context.Context) (*store.Contents, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.down.Load() {
		return nil, fmt.Errorf("redisstore: sync: redis is unreachable: %w", store.ErrUnavailable)
	}
	s.flushMu.Lock()
	err := s.resolvePendingLocked(ctx)
	s.flushMu.Unlock()
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		return nil, err
	}
	vals, err := s.c.HMGet(ctx, s.n.meta, "epoch", "cver", "uver").Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: sync: %w", s.wrap(err))
	}
	str := func(v any) string { x, _ := v.(string); return x }
	epoch, vers := str(vals[0]), str(vals[1])+"/"+str(vals[2])
	s.mu.Lock()
	switch {
	case epoch == "":
		s.mu.Unlock()
		s.markLost()
		return nil, fmt.Errorf("redisstore: sync: %w", store.ErrLost)
	case epoch != s.epoch:
		// Another instance wrote its copy back after a loss: adopt it.
		s.epoch, s.lost, s.forced = epoch, false, true
		s.resetTally()
	case s.lost:
		s.mu.Unlock()
		return nil, fmt.Errorf("redisstore: sync: %w", store.ErrLost)
	}
	if s.synced && !s.forced && vers == s.lastVers {
		s.mu.Unlock()
		return nil, nil
	}
	s.forced = false
	s.mu.Unlock()
	c, ep, err := s.load(ctx)
	if err != nil {
		s.mu.Lock()
		s.forced = true
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep != s.epoch {
		s.forced = true // lost or restored meanwhile; the next Sync sees it
		return nil, nil
	}
	s.synced, s.lastVers = true, vers
	return c, nil
}

// PutKeys creates or replaces keys by id, all or none, in one script that
// checks revisions and duplicate secrets first.
func (s *Store) PutKeys(ctx context.Context, keys ...pool.Key) error {
	epoch, err := s.ready(ctx, "put keys")
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, 0, 2+4*len(keys))
	args = append(args, epoch, len(keys))
	for _, k := range keys {
		if k.ID == "" {
			return errors.New("redisstore: put keys: key with empty id")
		}
		v, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("redisstore: put keys: key %q: %w", k.ID, err)
		}
		args = append(args, k.ID, store.Fingerprint(k.Secret), k.Revision, string(v))
	}
	res, err := s.run(ctx, "put keys", scriptPutKeys, []string{s.n.meta, s.n.keys, s.n.fp, s.n.keyfp, s.n.rev}, args...)
	if err != nil {
		return err
	}
	switch res[0] {
	case "dup":
		i, _ := strconv.Atoi(res[1])
		return fmt.Errorf("redisstore: put keys: %w", &store.DuplicateError{Index: i, ID: res[2], ExistingID: res[3]})
	case "conflict":
		return fmt.Errorf("redisstore: put keys: key %q: revision %s is not newer than stored %s: %w", res[1], res[3], res[2], store.ErrConflict)
	}
	s.publish(ctx, "keys")
	return nil
}

// DeleteKeys removes keys, their usage and rests by id, all or none.
func (s *Store) DeleteKeys(ctx context.Context, ids ...string) error {
	epoch, err := s.ready(ctx, "delete keys")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, epoch)
	for _, id := range ids {
		args = append(args, id)
	}
	n := s.n
	if _, err := s.run(ctx, "delete keys", scriptDeleteKeys, []string{n.meta, n.keys, n.fp, n.keyfp, n.rev, n.req, n.ok, n.fail, n.used, n.lasterr, n.rest, n.ptok, n.ctok}, args...); err != nil {
		return err
	}
	s.publish(ctx, "keys")
	return nil
}

// AddUsage adds the deltas, all or none, as one flush with its own id. A
// flush whose answer was lost is kept and retried with the same id before
// anything else, so it is applied exactly once; what the caller hands
// again of it is not added twice.
func (s *Store) AddUsage(ctx context.Context, deltas []pool.UsageDelta) error {
	epoch, err := s.ready(ctx, "add usage")
	if err != nil {
		return err
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if err := s.resolvePendingLocked(ctx); err != nil {
		return err
	}
	rest := subtract(deltas, s.applied)
	if len(rest) == 0 {
		s.applied = nil
		return nil
	}
	f := &flush{id: randomID(), deltas: rest}
	if err := s.apply(ctx, epoch, f); err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			s.pending = f // maybe applied: retried with the same id
		}
		return err
	}
	s.applied = nil
	return nil
}

// resolvePendingLocked applies the pending flush, if any, with its own id:
// a no-op if it was applied already.
func (s *Store) resolvePendingLocked(ctx context.Context) error {
	if s.pending == nil {
		return nil
	}
	epoch, err := s.ready(ctx, "add usage")
	if err != nil {
		return err
	}
	if err := s.apply(ctx, epoch, s.pending); err != nil {
		return err
	}
	s.applied = append(s.applied, s.pending.deltas...)
	s.pending = nil
	return nil
}

func (s *Store) apply(ctx context.Context, epoch string, f *flush) error {
	args := make([]any, 0, 2+8*len(f.deltas))
	args = append(args, epoch, int(flushTTL/time.Second))
	for _, d := range f.deltas {
		if d.ID == "" {
			continue
		}
		used := ""
		if !d.LastUsed.IsZero() {
			used = nanos(d.LastUsed)
		}
		le := ""
		if d.LastError != nil {
			b, err := json.Marshal(d.LastError)
			if err != nil {
				return fmt.Errorf("redisstore: add usage: key %q: %w", d.ID, err)
			}
			le = nanos(d.LastError.At) + "|" + string(b)
		}
		args = append(args, d.ID, d.Requests, d.Successes, d.Failures, used, le, d.PromptTokens, d.CompletionTokens)
	}
	_, err := s.run(ctx, "add usage", scriptAddUsage, []string{s.n.meta, s.n.keys, s.n.req, s.n.ok, s.n.fail, s.n.used, s.n.lasterr, s.n.flush + f.id, s.n.ptok, s.n.ctok}, args...)
	return err
}

// nanos formats t as 19 digits of unix nanoseconds, so that strings
// compare like times (from 1970 to 2262; earlier times count as 1970).
func nanos(t time.Time) string {
	ns := t.UnixNano()
	if ns < 0 || t.Year() < 1970 {
		ns = 0
	}
	if t.Year() > 2261 {
		ns = math.MaxInt64
	}
	return fmt.Sprintf("%019d", ns)
}

// subtract returns deltas less the counts of done, key by key; LastUsed
// and LastError stay (applying them twice changes nothing).
func subtract(deltas, done []pool.UsageDelta) []pool.UsageDelta {
	if len(done) == 0 {
		return deltas
	}
	type counts struct{ r, s, f, pt, ct int64 }
	sub := map[string]counts{}
	for _, d := range done {
		c := sub[d.ID]
		c.r, c.s, c.f = c.r+d.Requests, c.s+d.Successes, c.f+d.Failures
		c.pt, c.ct = c.pt+d.PromptTokens, c.ct+d.CompletionTokens
		sub[d.ID] = c
	}
	out := make([]pool.UsageDelta, 0, len(deltas))
	for _, d := range deltas {
		if c, ok := sub[d.ID]; ok {
			d.Requests, d.Successes, d.Failures = d.Requests-c.r, d.Successes-c.s, d.Failures-c.f
			d.PromptTokens, d.CompletionTokens = d.PromptTokens-c.pt, d.CompletionTokens-c.ct
			delete(sub, d.ID)
		}
		if !d.Counts() && d.LastUsed.IsZero() && d.LastError == nil {
			continue
		}
		out = append(out, d)
	}
	return out
}

// ResetUsage zeroes the counts of the named keys, all or none.
func (s *Store) ResetUsage(ctx context.Context, ids []string) error {
	epoch, err := s.ready(ctx, "reset usage")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if err := s.resolvePendingLocked(ctx); err != nil {
		return err
	}
	args := make([]any, 0, 1+len(ids))
	args = append(args, epoch)
	for _, id := range ids {
		args = append(args, id)
	}
	if _, err := s.run(ctx, "reset usage", scriptResetUsage, []string{s.n.meta, s.n.req, s.n.ok, s.n.fail, s.n.ptok, s.n.ctok}, args...); err != nil {
		return err
	}
	// The caller zeroes its counts of these keys too: what was applied of
	// them is no longer in what it hands next.
	reset := map[string]bool{}
	for _, id := range ids {
		reset[id] = true
	}
	kept := s.applied[:0]
	for _, d := range s.applied {
		if !reset[d.ID] {
			kept = append(kept, d)
		}
	}
	s.applied = kept
	s.publish(ctx, "usage")
	return nil
}

// PutToken creates or replaces a client token by id.
func (s *Store) PutToken(ctx context.Context, t pool.ClientToken) error {
	epoch, err := s.ready(ctx, "put token")
	if err != nil {
		return err
	}
	if t.ID == "" {
		return errors.New("redisstore: put token: token with empty id")
	}
	v, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("redisstore: put token %q: %w", t.ID, err)
	}
	if _, err := s.run(ctx, "put token", scriptPutToken, []string{s.n.meta, s.n.tokens}, epoch, t.ID, string(v)); err != nil {
		return err
	}
	s.publish(ctx, "tokens")
	return nil
}

// DeleteToken removes a client token; store.ErrNotFound if there is none.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	epoch, err := s.ready(ctx, "delete token")
	if err != nil {
		return err
	}
	res, err := s.run(ctx, "delete token", scriptDeleteToken, []string{s.n.meta, s.n.tokens}, epoch, id)
	if err != nil {
		return err
	}
	if res[0] == "notfound" {
		return fmt.Errorf("redisstore: token %q: %w", id, store.ErrNotFound)
	}
	s.publish(ctx, "tokens")
	return nil
}

// PutRest shares key id's rest until the given time; a stored rest that
// ends later stays.
func (s *Store) PutRest(ctx context.Context, id string, until time.Time, reason string) error {
	epoch, err := s.ready(ctx, "put rest")
	if err != nil {
		return err
	}
	if _, err := s.run(ctx, "put rest", scriptPutRest, []string{s.n.meta, s.n.keys, s.n.rest}, epoch, id, nanos(until)+"|"+reason); err != nil {
		return err
	}
	s.publish(ctx, "rest")
	return nil
}

// resetTally forgets the Acquire tally of a data set that is gone.
func (s *Store) resetTally() {
	s.acqMu.Lock()
	s.confirmed, s.unknown = map[string]int64{}, map[string]int64{}
	s.acqMu.Unlock()
}

// Restore writes c back into a pool whose data Redis lost, unless another
// instance did first (then it returns an error matching store.ErrConflict
// and wrote nothing); either way the store then follows the restored data.
func (s *Store) Restore(ctx context.Context, c *store.Contents) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.down.Load() {
		return fmt.Errorf("redisstore: restore: redis is unreachable: %w", store.ErrUnavailable)
	}
	n := s.n
	epoch := randomID()
	args := []any{epoch, SchemaVersion, len(c.Keys), 0, len(c.Tokens), 0}
	for _, k := range c.Keys {
		v, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("redisstore: restore: key %q: %w", k.ID, err)
		}
		args = append(args, k.ID, store.Fingerprint(k.Secret), k.Revision, string(v))
	}
	nu := 0
	for id, u := range c.Usage {
		used, le := "", ""
		if !u.LastUsed.IsZero() {
			used = nanos(u.LastUsed)
		}
		if u.LastError != nil {
			b, _ := json.Marshal(u.LastError)
			le = nanos(u.LastError.At) + "|" + string(b)
		}
		args = append(args, id, u.Requests, u.Successes, u.Failures, used, le, u.PromptTokens, u.CompletionTokens)
		nu++
	}
	args[3] = nu
	for _, t := range c.Tokens {
		v, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("redisstore: restore: token %q: %w", t.ID, err)
		}
		args = append(args, t.ID, string(v))
	}
	nr := 0
	now := s.cfg.Now()
	for id, r := range c.Rests {
		if r.Until.After(now) {
			args = append(args, id, nanos(r.Until)+"|"+r.Reason)
			nr++
		}
	}
	args[5] = nr
	res, err := scriptRestore.Run(ctx, s.c, []string{n.meta, n.keys, n.fp, n.keyfp, n.rev, n.req, n.ok, n.fail, n.used, n.lasterr, n.tokens, n.rest, n.ptok, n.ctok}, args...).StringSlice()
	if err != nil {
		return fmt.Errorf("redisstore: restore: %w", s.wrap(err))
	}
	s.mu.Lock()
	s.epoch, s.lost, s.forced = res[1], false, true
	s.mu.Unlock()
	s.resetTally()
	if res[0] != "ok" {
		// Someone else's copy: this instance's counts not yet flushed
		// are flushed into it as usual.
		return fmt.Errorf("redisstore: restore: another instance wrote its copy back first: %w", store.ErrConflict)
	}
	s.flushMu.Lock()
	// Counts flushed before the loss are in c (the caller's totals); a
	// pending flush's outcome no longer matters.
	s.pending, s.applied = nil, nil
	s.flushMu.Unlock()
	s.cfg.Logger.Warn("wrote this instance's copy of the pool back into redis", "keys", len(c.Keys), "tokens", len(c.Tokens))
	s.publish(ctx, "restore")
	return nil
}

// Close stops listening and closes the client. Calls after Close fail.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.stop)
	s.ps.Close()
	s.wg.Wait()
	if err := s.c.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("redisstore: close: %w", err)
	}
	return nil
}
