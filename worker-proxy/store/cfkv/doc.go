// Package cfkv is a store.Store over a Cloudflare Workers KV namespace,
// through the KV REST API with github.com/cloudflare/cloudflare-go/v6.
// Every proxy instance pointed at one namespace shares its keys, tokens
// and usage.
//
// # Layout (schema 2)
//
// Every entry lives under the prefix "keypool/v2/", so a person browsing
// the namespace in Cloudflare's dashboard sees:
//
//	keypool/v2/schema            {"schema":2}: the layout version ({"schema":2,"cleanup":true}
//	                             while schema-1 entries are left to delete)
//	keypool/v2/rev               a random value, changed by every config write
//	keypool/v2/shards/<nn>       the keys (secrets included) whose id hashes (FNV-1a) to shard
//	                             nn of 32: {"keys":{id: key JSON with its "revision"}};
//	                             metadata {"v": random version, "n": keys}
//	keypool/v2/tokens/<token id> a client token: name, SHA-256 hash, masked form; metadata {"name","masked"}
//	keypool/v2/reset/<provider>  when that provider's keys' usage was last reset; metadata {"at": unix ns}
//	keypool/v2/usage/<n>         usage slot n of 8: {"instances":{instance: record},"folded":{…},
//	                             "writtenAt"}, the record of every instance whose id hashes to it
//	                             (its usage counts per key and "journalSeq") and the folded sum of
//	                             the instances gone (slotcodec.go: counts compact, DEFLATE, base64);
//	                             metadata {"updatedAt": unix ns}
//	keypool/v2/cleanup           the UTC day schema-1 entries were last deleted (during a cleanup)
//	keypool/v1/schema            {"schema":2}: a proxy of schema 1 refuses the namespace
//
// Shards are bounded: a shard's value may not pass 20 MiB (KV allows 25
// MiB), about 50,000 keys per shard, 1.6 million in all. The shard count
// is fixed for every provider together, so an import of any size writes
// at most 33 entries (32 shards and "rev"): 10,000 keys cost 33 writes
// and 32 reads.
//
// # Merge rule: per-key revisions, read-merge-write per shard
//
// KV has no compare-and-swap, so a shard is never written from memory
// alone. PutKeys and DeleteKeys read the shards they touch as KV holds
// them now, refuse the whole call with store.ErrConflict if a key's
// revision there (or in this instance's copy) is not older than the one
// given, replace or remove only the keys of the call (this instance's
// own writes of the last StaleWindow are kept too, as KV may still serve
// an older shard), and write the shards and "rev" in one bulk request.
// So two instances editing different keys of one shard keep both edits,
// and two edits of one key from the same revision end in ErrConflict for
// the second. Two writes of one shard within KV's propagation delay
// (about 60 s between locations) can still lose the first: the merge
// reads what KV serves.
//
// # Usage slots
//
// Each instance's usage record lives in one of 8 slots (a hash of its
// instance id); only it writes its record, by a read-merge-write of the
// slot that keeps the other records. Reading everyone's usage is 8 reads
// and no list, however many instances there are. If two instances of one
// slot write at once and one record is lost, its instance sees an older
// copy (or none) at its next usage read and writes it again. The usage
// flush interval stretches with the number of instances seen writing in
// the last 2 hours (a fixed window: one growing with the interval runs
// away while instances come and go), so that together they write at most
// 288 usage records a day: 2 instances flush every 10 minutes (the
// default), 10 every 48 minutes. An instance without a journal (the edge
// build) writes first UsageFlushInterval (not stretched) after Open, so
// one that lives shorter costs no write; with a journal, at once.
//
// A usage read takes in only the slots whose value changed, and decodes
// only the records whose counts changed.
//
// # Folding instances that are gone
//
// Instances with a new id at every start (edge isolates) leave a record
// each. The writer of a slot folds the records not updated for
// max(2 h, 2 × its flush interval) into the slot's "folded" sum, and
// notes each folded id with its record's updatedAt and journalSeq; ids
// are forgotten 7 days after that updatedAt. So a slot holds the
// instances of the last hours only. A fold is a function of the slot's
// value as read (the whole slot is one KV value, and the last write
// wins): two writers folding one record write the same sum, a fold lost
// to a concurrent write leaves the record where it was, and nothing
// counts twice; a live record lost that way is written again by the rule
// above. A stale read (an older "writtenAt" than one already seen) is
// ignored whole. An instance folded while alive (idle past the bound)
// finds its id among the folded at its next read of the slot, takes the
// folded copy (one of its last two writes) out of its own record, and
// writes only what came after; a restart with the same id adopts its
// record, never the folded part. Not covered: an instance idle for over
// 7 days may count what was folded twice when it comes back.
//
// # Migration from schema 1
//
// Schema 1 kept every key, token, reset and usage record as its own
// entry under "keypool/v1/". The first instance that opens such a
// namespace migrates it:
//
//  1. it lists and reads every schema-1 entry (keys staged by an import
//     never published are skipped), and reads the schema-2 shards and
//     slots that exist (a migration interrupted before, or running in
//     another instance);
//  2. it writes the shards, tokens, resets, usage slots and "rev" in
//     bulk requests of 10 entries, merged with what exists (a key keeps
//     the higher revision, an instance's record the newer one; usage
//     records are totals, never deltas, so nothing counts twice);
//  3. it flips the schema: keypool/v2/schema {"schema":2,"cleanup":true}
//     and keypool/v1/schema {"schema":2} in one request;
//  4. schema-1 entries are deleted, at most 250 a day for the whole
//     cluster (the free plan allows 1,000 deletes a day), by the first
//     instance each UTC day; then the cleanup flag goes.
//
// A start that finds schema 1 still in place runs it again from the top,
// so an interrupted migration resumes, and two instances starting at once
// write the same entries. Stop instances of the old version before
// starting the new one: one still running writes schema-1 entries that
// nobody reads.
//
// # Budget
//
// KV's free plan allows 1,000 writes, 1,000 lists and 100,000 reads a day,
// so the relay never touches KV. Each instance reads "rev" every sync
// interval (one read) and lists and reads the config only when it
// changed; it writes its usage record at most once per usage flush
// interval (stretched as above) and reads the 8 usage slots once per
// usage sync interval. Usage totals are the sum of every instance's
// record, counted only from the provider's last reset on.
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
package cfkv
