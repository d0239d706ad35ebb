package deploy

import (
	"context"
	"net/url"
)

// check is step 1: git, the checkout, the repository and branch.
func (d *deployer) check(ctx context.Context) error {
	st, err := inspect(ctx, d.g, d.o)
	if err != nil {
		return err
	}
	d.st = st
	d.say("git %s", st.gitVersion)
	d.say("repository %s, branch %s, push to %s", st.repo, st.branch, redact(st.remote))
	if st.branch != "main" {
		d.say("note: pages.yml publishes from main; on %s, run it by hand (Actions → pages → Run workflow)", st.branch)
	}
	if u, err := url.Parse(d.o.ProxyURL); err == nil && u.Scheme == "http" && u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1" {
		d.say("note: browsers block an http:// proxy from an https:// page; give the proxy an https:// URL")
	}
	if d.o.DryRun {
		d.say("dry run: nothing will be changed; \"would:\" lines are what a real run does")
	}
	return nil
}
