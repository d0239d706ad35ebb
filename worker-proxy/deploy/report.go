package deploy

import (
	"fmt"
	"strings"
)

// report is the last step: what the operator still has to click and set,
// with the values this run found. Secrets appear only as placeholders.
func (d *deployer) report() {
	r, o := d.st.repo, d.o
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }

	line("Dashboard: %s", r.PagesURL())
	line("1. Turn Actions on if GitHub asks (a fork starts with workflows off): %s/actions", r.WebURL())
	line("2. Settings → Pages → Build and deployment → Source: GitHub Actions")
	line("     %s/settings/pages", r.WebURL())
	line("3. Settings → Secrets and variables → Actions → Variables → New repository variable")
	proxy := o.ProxyURL
	if proxy == "" {
		proxy = "<the proxy's public URL, once it runs (optional: the dashboard asks for it too)>"
	}
	line("     KEYPOOL_PROXY_URL = %s", proxy)
	line("     %s/settings/variables/actions", r.WebURL())
	line("   No repository secret is needed: the dashboard is public, the proxy's secrets go to its host (6).")
	line("4. Actions → pages → Run workflow (the first run came before Pages was on); it publishes the URL above.")
	b.WriteString("\n")
	line("Proxy: image %s:latest, binaries on %s/releases", r.Image(), r.WebURL())
	line("5. Publish both with a tag (release.yml): git tag v1.0.0 && git push origin v1.0.0")
	line("   then make the image public: your profile (or organisation) → Packages → %s → Package settings", strings.ToLower(r.Name))
	line("   → Change visibility → Public, so hosts can pull it without a login.")
	line("6. The proxy's environment on its host (secrets go into the host's secret settings, never into a file):")
	for _, kv := range d.proxyEnv() {
		line("     %s", kv)
	}
	line("   Free hosts lose their disk on restart: STORE=cfkv keeps the keys in Cloudflare KV.")
	line("   On a VPS with a disk the default STORE=bolt works too (no Cloudflare needed).")
	line("7. Start it — each host with its steps in worker-proxy/DEPLOY.md (部署):")
	img := r.Image() + ":latest"
	line("     Render     New → Web Service → Existing image %s; Health Check Path /healthz", img)
	line("     Fly.io     fly launch --image %s --no-deploy; fly secrets set CF_API_TOKEN=... ADMIN_KEY=...; fly deploy", img)
	line("     Koyeb      Create Service → Docker image %s, port 8080, health check /healthz", img)
	line("     Cloud Run  gcloud run deploy keypool --image %s --port 8080 --allow-unauthenticated", img)
	line("     VPS        the worker-proxy binary from Releases under systemd (unit file in worker-proxy/DEPLOY.md)")
	line("8. Open %s, enter the proxy's URL and ADMIN_KEY, and add your keys.", r.PagesURL())
	fmt.Fprint(d.out, b.String())
}

// proxyEnv lists the proxy's variables with this run's values; secrets
// and unknown values as <placeholders>.
func (d *deployer) proxyEnv() []string {
	o := d.o
	account := o.CFAccount
	if account == "" {
		account = "<your Cloudflare account id>"
	}
	ns := d.ns.id
	switch {
	case ns != "":
	case o.kvEnabled() && o.DryRun:
		ns = "<created by a real run of deploy>"
	default:
		ns = "<run deploy with --cf-account ID and CF_API_TOKEN set, and it prints this>"
	}
	env := []string{
		"STORE=cfkv",
		"CF_ACCOUNT_ID=" + account,
		"CF_KV_NAMESPACE_ID=" + ns,
	}
	if o.CFBaseURL != "" {
		env = append(env, "CF_API_BASE_URL="+o.CFBaseURL)
	}
	return append(env,
		"CF_API_TOKEN=<secret: your Cloudflare API token (Account → Workers KV Storage → Edit); not shown>",
		"ADMIN_KEY=<secret: generate one, e.g. openssl rand -hex 32>",
		"ALLOWED_ORIGINS="+d.st.repo.Origin(),
		"INSTANCE_ID=<one name per instance, e.g. render-1: a free host's disk does not keep the generated one>",
	)
}
