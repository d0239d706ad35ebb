package deploy

import (
	"context"
	"time"

	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// kv is step 3: find or create the KV namespace the proxy keeps its keys in.
func (d *deployer) kv(ctx context.Context) error {
	o := d.o
	if !o.kvEnabled() {
		d.say("skipped: no --cf-account and CF_API_TOKEN (see the end for what the proxy then needs)")
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if o.DryRun {
		id, found, err := cfkv.FindNamespace(ctx, o.CFBaseURL, o.CFAccount, o.token, o.KVTitle)
		if err != nil {
			return d.kvProblem(err)
		}
		if found {
			d.ns.id = id
			d.say("found namespace %q (id %s)", o.KVTitle, id)
		} else {
			d.would("create namespace %q in account %s", o.KVTitle, o.CFAccount)
		}
		return nil
	}
	id, created, err := cfkv.EnsureNamespace(ctx, o.CFBaseURL, o.CFAccount, o.token, o.KVTitle)
	if err != nil {
		return d.kvProblem(err)
	}
	d.ns = namespace{id: id, created: created}
	if created {
		d.did("created namespace %q (id %s)", o.KVTitle, id)
	} else {
		d.say("found namespace %q (id %s)", o.KVTitle, id)
	}
	return nil
}

func (d *deployer) kvProblem(err error) error {
	return problemf([]string{
		"The token needs the permission " + cfkv.PermissionHint + " on account " + d.o.CFAccount + ".",
		"Create one: https://dash.cloudflare.com/profile/api-tokens → Create Token → Custom token,",
		"then put it in CF_API_TOKEN (bash: export CF_API_TOKEN=...; PowerShell: $env:CF_API_TOKEN = '...'; cmd: set CF_API_TOKEN=...).",
		"Nothing was committed or pushed.",
	}, "%v", err)
}
