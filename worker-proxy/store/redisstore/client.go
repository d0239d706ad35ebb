package redisstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timeouts the client uses unless the URL sets them (dial_timeout,
// read_timeout, write_timeout): short, because the proxy serves from
// memory when Redis is slow rather than wait for it.
const (
	defaultDialTimeout  = 2 * time.Second
	defaultReadTimeout  = 2 * time.Second
	defaultWriteTimeout = 2 * time.Second
)

// NewClient returns a go-redis client for rawURL:
//
//	redis://[user:password@]host:port[/db]          one server
//	rediss://…                                       the same over TLS
//	redis+cluster://[user:password@]host:port?addr=host2:port2&addr=…   Redis Cluster
//	redis+sentinel://[user:password@]sentinel:26379[/db]?master_name=mymaster&addr=…   Sentinel
//
// (rediss+cluster:// and rediss+sentinel:// for TLS). Query parameters are
// go-redis options (dial_timeout=3s, pool_size=20, …). The error never
// holds the password.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	if rawURL == "" {
		return nil, errors.New("redis: empty URL")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis: the URL does not parse (check its form; special characters in the password must be percent-encoded)")
	}
	scheme, mode, _ := strings.Cut(u.Scheme, "+")
	if scheme != "redis" && scheme != "rediss" {
		return nil, fmt.Errorf("redis: URL scheme %q is not redis, rediss, redis+cluster or redis+sentinel", u.Scheme)
	}
	u.Scheme = scheme
	plain := u.String()
	q := u.Query()
	switch mode {
	case "":
		o, err := redis.ParseURL(plain)
		if err != nil {
			return nil, redact(err, u)
		}
		o.ContextTimeoutEnabled = true
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, q)
		return redis.NewClient(o), nil
	case "cluster":
		o, err := redis.ParseClusterURL(plain)
		if err != nil {
			return nil, redact(err, u)
		}
		o.ContextTimeoutEnabled = true
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, q)
		return redis.NewClusterClient(o), nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(plain)
		if err != nil {
			return nil, redact(err, u)
		}
		if o.MasterName == "" {
			return nil, errors.New("redis: a redis+sentinel:// URL needs ?master_name=<name of the monitored master>")
		}
		o.ContextTimeoutEnabled = true
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, q)
		return redis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("redis: URL scheme %q is not redis, rediss, redis+cluster or redis+sentinel", u.Scheme+"+"+mode)
}

func setTimeouts(dial, read, write *time.Duration, q url.Values) {
	if !q.Has("dial_timeout") {
		*dial = defaultDialTimeout
	}
	if !q.Has("read_timeout") {
		*read = defaultReadTimeout
	}
	if !q.Has("write_timeout") {
		*write = defaultWriteTimeout
	}
}

// redact removes the URL's password from a parse error.
func redact(err error, u *url.URL) error {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "…")
	}
	return errors.New(msg)
}

// Redacted returns rawURL with its password masked, for logs.
func Redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
