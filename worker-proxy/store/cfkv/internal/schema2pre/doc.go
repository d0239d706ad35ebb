// Package schema2pre is a frozen copy of package cfkv as it was when it
// wrote layout schema 2 without the config snapshot (commit 20dc1f1):
// every start and every config change listed the namespace and read the
// shards, tokens and resets. It exists only so that tests can write a
// namespace exactly as a proxy of that time did, run such a proxy next to
// the current one, and check that cfkv takes the namespace over (the
// namespace setup of kv-setup is left out: tests create namespaces
// themselves). Do not change it; do not use it in the proxy.
package schema2pre
