// Package cfkv is a store.Store over a Cloudflare Workers KV namespace,
// through the KV REST API with github.com/cloudflare/cloudflare-go/v6.
// Every proxy instance pointed at one namespace shares its keys, tokens
// and usage.
//
// # Layout (schema 1)
//
// Every entry lives under the prefix "keypool/v1/", so a person browsing
// the namespace in Cloudflare's dashboard sees:
//
//	keypool/v1/schema            {"schema":1}: the layout version, for migrations
//	keypool/v1/rev               a random value, changed by every config write
//	keypool/v1/keys/<key id>     a pool key as JSON (its secret included);
//	                             metadata {"provider","masked","revision","active","disabled"[,"batch","staged"]}
//	keypool/v1/batches/<id>      marker of a published import of more than 9,999 keys:
//	                             keys whose metadata names a batch exist only once its marker does
//	keypool/v1/tokens/<token id> a client token: name, SHA-256 hash, masked form; metadata {"name","masked"}
//	keypool/v1/reset/<provider>  when that provider's usage was last reset; metadata {"at": unix ns}
//	keypool/v1/usage/<instance>  one instance's usage counts per key (only that instance writes it),
//	                             with "journalSeq", the last local journal record they include;
//	                             metadata {"updatedAt": unix ns}
//
// # Budget
//
// KV's free plan allows 1,000 writes, 1,000 lists and 100,000 reads a day,
// so the relay never touches KV. Each instance reads "rev" every sync
// interval (one read) and lists and reads the config only when it changed;
// it writes its own usage record at most once per usage flush interval
// and lists the others' records once per usage sync interval. Usage totals
// are the sum of every instance's record, counted only from the provider's
// last reset on.
//
// # Imports and duplicates
//
// PutKeys is all or none. Up to 9,999 keys go in one bulk request with
// "rev". More are staged: written in requests of 10,000 with a batch id in
// their metadata, which every reader skips, then published by one request
// holding the batch marker, the keys they replace and "rev". If the
// publish's answer is lost, the marker is read back to learn the outcome;
// if that read fails too, the next write or sync reads it first.
// Staged keys of a failed import are deleted, at once or at the next sync;
// those an instance left behind (it crashed) are deleted by any instance
// once they are an hour old (metadata "staged").
// A second copy of a secret is refused (store.ErrDuplicate), compared by
// fingerprint against the keys this instance knows.
//
// # Usage journal
//
// With Config.JournalPath, usage taken in by AddUsage is appended to a
// local journal (package journal, one fsync per batch) before it counts,
// and the journal is compacted after each usage write to KV. Open replays
// the records that KV's usage records do not include yet ("journalSeq"),
// so kill -9 loses no counts and counts none twice.
//
// # Locks
//
// One lock serialises the calls to KV; the memory they update has its own
// lock, never held across a call, so Health, AddUsage and the status pages
// answer at once while KV hangs.
//
// # Consistency
//
// KV is eventually consistent (about 60 s between locations) and has no
// compare-and-swap. Key edits carry a revision; a write over a key whose
// known revision is not older is refused (store.ErrConflict), so two
// instances' concurrent edits are detected, not silently merged, as far as
// each instance's view allows.
package cfkv
