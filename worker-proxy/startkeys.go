package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/server"
)

// startKeys are the keys given in the environment, one variable per
// provider: <NAME>_KEYS (the provider's name in upper case, '-' as '_':
// GEMINI_KEYS, OPENAI_KEYS, ANTHROPIC_KEYS, and those of PROVIDERS_FILE),
// separated by commas, spaces or new lines.
type startKeys struct {
	provider, variable string
	secrets            []string
}

// readStartKeys returns the start keys of every provider in reg that has
// some, in reg's order.
func readStartKeys(getenv func(string) string, reg *provider.Registry) []startKeys {
	var out []startKeys
	for _, name := range reg.Names() {
		v := adminapi.StartKeysVariable(name)
		secrets := strings.FieldsFunc(getenv(v), func(r rune) bool {
			return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
		})
		if len(secrets) > 0 {
			out = append(out, startKeys{provider: name, variable: v, secrets: secrets})
		}
	}
	return out
}

// addStartKeys puts the start keys the pool does not hold yet into the
// store and the pool before the proxy serves. Keys already there keep
// their state and settings: a key disabled in the dashboard stays
// disabled; one deleted there comes back at the next start while its
// variable still names it.
// An invalid entry stops the start (a configuration error); a store that
// fails the write is logged, and the proxy serves what it has.
func addStartKeys(ctx context.Context, srv *server.Server, list []startKeys, log *slog.Logger) error {
	for _, sk := range list {
		res, err := srv.SeedKeys(ctx, sk.provider, sk.secrets)
		switch {
		case errors.Is(err, pool.ErrInvalid):
			return fmt.Errorf("%s: %w", sk.variable, err)
		case err != nil:
			log.Warn("start keys not all added", "variable", sk.variable, "added", res.Added, "err", err)
		case res.Added == 0:
			log.Info("start keys already in the pool", "variable", sk.variable, "keys", len(sk.secrets))
		}
	}
	return nil
}
