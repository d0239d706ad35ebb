package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// kvSetup is the `worker-proxy kv-setup` subcommand: it finds or creates
// the KV namespace by title and prints the environment lines to use. The
// token is never printed.
func kvSetup(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kv-setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	account := fs.String("account", getenv("CF_ACCOUNT_ID"), "Cloudflare account id (or CF_ACCOUNT_ID)")
	token := fs.String("token", "", "API token with "+cfkv.PermissionHint+" (or CF_API_TOKEN, which keeps it out of the shell history)")
	title := fs.String("title", "keypool", "namespace title to find or create")
	base := fs.String("base-url", getenv("CF_API_BASE_URL"), "API origin; Cloudflare's by default (or CF_API_BASE_URL)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *token == "" {
		*token = getenv("CF_API_TOKEN")
	}
	if *account == "" || *token == "" {
		fmt.Fprintln(stderr, "kv-setup: an account id (-account or CF_ACCOUNT_ID) and an API token (CF_API_TOKEN or -token) are required.")
		fmt.Fprintf(stderr, "Create the token in Cloudflare: My Profile → API Tokens → Create Token → Custom, permission %s.\n", cfkv.PermissionHint)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id, created, err := cfkv.EnsureNamespace(ctx, *base, *account, *token, *title)
	if err != nil {
		fmt.Fprintln(stderr, "kv-setup:", err)
		return 1
	}
	verb := "found"
	if created {
		verb = "created"
	}
	fmt.Fprintf(stderr, "kv-setup: %s the KV namespace %q.\n", verb, *title)
	fmt.Fprintf(stdout, "STORE=cfkv\nCF_ACCOUNT_ID=%s\nCF_KV_NAMESPACE_ID=%s\n", *account, id)
	if *base != "" {
		fmt.Fprintf(stdout, "CF_API_BASE_URL=%s\n", *base)
	}
	fmt.Fprintln(stdout, "# and CF_API_TOKEN=<the token you used>, kept secret")
	return 0
}
