// Command kvemu serves the Workers KV REST API emulator on a local address so
// the KV setup can be tried without a Cloudflare account:
//
//	go run ./worker-proxy/kvemu/cmd/kvemu -addr 127.0.0.1:8787 -account ACC -token TOKEN
//
// It prints the environment to point the proxy at it. Data lives in memory;
// with -data it is loaded from the file at start and saved to it on SIGINT or
// SIGTERM.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kvemu:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("kvemu", flag.ContinueOnError)
	addr := fl.String("addr", "127.0.0.1:8787", "listen address")
	account := fl.String("account", "0123456789abcdef0123456789abcdef", "account id the token works for")
	token := fl.String("token", "local-kv-token", "API token to accept (with Workers KV Storage Edit)")
	title := fl.String("namespace", "", "create (or reuse) a namespace with this title and print its id")
	data := fl.String("data", "", "JSON file to load at start and save to on exit")
	stale := fl.Duration("stale", 0, "eventual consistency: reads see writes only after this long")
	freePlan := fl.Bool("free-plan", false, "enforce the free plan's daily limits and 1,200 requests per 5 minutes per token")
	if err := fl.Parse(args); err != nil {
		return err
	}

	opts := kvemu.Options{
		Tokens:   map[string]kvemu.TokenInfo{*token: {AccountID: *account, CanRead: true, CanWrite: true}},
		StaleFor: *stale,
	}
	if *freePlan {
		opts.Limits = kvemu.FreePlan()
	}
	emu := kvemu.New(opts)
	if *data != "" {
		f, err := os.Open(*data)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err
		default:
			err = emu.Load(f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	nsID := ""
	if *title != "" {
		id, err := emu.CreateNamespace(*account, *title)
		if err != nil && !errors.Is(err, kvemu.ErrNamespaceExists) {
			return err
		}
		nsID = id
	}

	srv, err := emu.Listen(*addr)
	if err != nil {
		return err
	}
	fmt.Printf("kvemu: Workers KV API emulator on %s/client/v4/accounts/%s/storage/kv/namespaces\n", srv.URL, *account)
	fmt.Printf("CF_API_BASE_URL=%s\n", srv.URL)
	fmt.Printf("CF_ACCOUNT_ID=%s\n", *account)
	fmt.Printf("CF_API_TOKEN=%s\n", *token)
	if nsID != "" {
		fmt.Printf("CF_KV_NAMESPACE_ID=%s\n", nsID)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
	if *data != "" {
		if err := save(emu, *data); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "kvemu: saved to %s at %s\n", *data, time.Now().Format(time.RFC3339))
	}
	return nil
}

// save writes the snapshot next to path and renames it over path.
func save(emu *kvemu.Emulator, path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := emu.Save(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
