package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

// loadKeyring reads ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS; nil when
// no key is set. Problems go to bad, naming the variable, never its value.
func loadKeyring(getenv func(string) string, bad func(name, format string, args ...any)) *seal.Keyring {
	cur, prev := getenv("ENCRYPTION_KEY"), getenv("ENCRYPTION_KEY_PREVIOUS")
	if strings.TrimSpace(cur) == "" {
		if strings.TrimSpace(prev) != "" {
			bad("ENCRYPTION_KEY_PREVIOUS", "is set but ENCRYPTION_KEY is not: set ENCRYPTION_KEY to the new key")
		}
		return nil
	}
	if _, err := seal.ParseKey(cur); err != nil {
		bad("ENCRYPTION_KEY", "%v", err)
		return nil
	}
	r, err := seal.ParseKeyring(cur, prev)
	if err != nil {
		bad("ENCRYPTION_KEY_PREVIOUS", "%v", err)
		return nil
	}
	return r
}

// newEncryptionKey is the `worker-proxy new-encryption-key` subcommand: it
// prints a new random key for ENCRYPTION_KEY.
func newEncryptionKey(stdout, stderr io.Writer) int {
	k := seal.GenerateKey()
	pk, _ := seal.ParseKey(k)
	fmt.Fprintf(stderr, "new-encryption-key: key id %s; keep the key secret and safe: without it the stored API keys cannot be read.\n", pk.ID())
	fmt.Fprintf(stdout, "ENCRYPTION_KEY=%s\n", k)
	return 0
}

// rotateEncryptionKey is the `worker-proxy rotate-encryption-key`
// subcommand: with the store's configuration in the environment, it
// re-seals every stored API key with ENCRYPTION_KEY, opening those sealed
// with an old key from ENCRYPTION_KEY_PREVIOUS or -old-key-file (and
// sealing plaintext ones). It reports counts and is safe to run again.
func rotateEncryptionKey(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rotate-encryption-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	oldFile := fs.String("old-key-file", "", "file holding the previous encryption key (instead of ENCRYPTION_KEY_PREVIOUS, which shows in the process environment)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "configuration error:\n%v\n", err)
		return 2
	}
	if cfg.Keyring == nil {
		fmt.Fprintln(stderr, "rotate-encryption-key: set ENCRYPTION_KEY to the new key (`worker-proxy new-encryption-key` makes one) and ENCRYPTION_KEY_PREVIOUS to the old one.")
		return 2
	}
	ring := cfg.Keyring
	if *oldFile != "" {
		b, err := os.ReadFile(*oldFile)
		if err != nil {
			fmt.Fprintln(stderr, "rotate-encryption-key: old key:", err)
			return 2
		}
		old, err := seal.ParseKey(string(b))
		if err != nil {
			fmt.Fprintf(stderr, "rotate-encryption-key: old key in %s: %v\n", *oldFile, err)
			return 2
		}
		ring = ring.With(old)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(stderr, "rotate-encryption-key: open the store:", err)
		if errors.Is(err, store.ErrUnavailable) && cfg.Store == "bolt" {
			fmt.Fprintln(stderr, "Stop the proxy first: it holds the data file.")
		}
		return 1
	}
	n, err := sealed.Reseal(ctx, st, ring)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	cur := ring.Current().ID()
	if err != nil {
		fmt.Fprintln(stderr, "rotate-encryption-key:", err)
		return 1
	}
	var from []string
	if n.FromPlaintext > 0 {
		from = append(from, fmt.Sprintf("%d plaintext", n.FromPlaintext))
	}
	for id, c := range n.FromKey {
		from = append(from, fmt.Sprintf("%d from key id %s", c, id))
	}
	slices.Sort(from)
	fmt.Fprintf(stdout, "%d keys in the store: %d re-sealed with key id %s", n.Keys, n.Resealed, cur)
	if len(from) > 0 {
		fmt.Fprintf(stdout, " (%s)", strings.Join(from, ", "))
	}
	fmt.Fprintf(stdout, ", %d already sealed with it.\n", n.Current)
	fmt.Fprintln(stderr, "rotate-encryption-key: done. Run every instance with the new ENCRYPTION_KEY; ENCRYPTION_KEY_PREVIOUS is no longer needed.")
	return 0
}
