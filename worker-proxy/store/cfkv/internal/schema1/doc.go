// Package schema1 is a frozen copy of package cfkv as it was while it
// wrote layout schema 1 (every key its own KV entry, one usage record per
// instance under keypool/v1/). It exists only so that tests can write a
// namespace exactly as a proxy of that time did, and check that cfkv
// migrates it to schema 2 (the namespace setup of kv-setup is left out:
// tests create namespaces themselves). Do not change it; do not use it
// in the proxy.
package schema1
