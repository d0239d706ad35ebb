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
//	keypool/v2/rev               changed by every config write: "<unix ns of the write>-<16 random
//	                             hex>" (proxies before the snapshot wrote the random part alone)
//	keypool/v2/config            the config snapshot (below): {"schema":2,"cleanup"?,"rev",
//	                             "settled"?,"at","shards":{name:{"v","at","keys"}},"tokens":{id:
//	                             token},"resets":{provider:{"at","stamps"}}}, or {"rev","tooBig":true}
//	                             past 20 MiB; metadata {"rev","settled"}
//	keypool/v2/shards/<nn>       the keys (secrets included) whose id hashes (FNV-1a) to shard
//	                             nn of 32: {"at","v","keys":{id: key JSON with its "revision"}};
//	                             metadata {"v": random version, "n": keys}; "v" is in the value too
//	                             (not in shards written before the snapshot)
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
// at most 34 entries (32 shards, "rev" and the config snapshot): 10,000
// keys cost 34 writes and 33 reads (the shards and the snapshot).
//
// # Merge rule: per-key revisions, read-merge-write per shard
//
// KV has no compare-and-swap, so a shard is never written from memory
// alone. PutKeys and DeleteKeys read the shards they touch as KV holds
// them now, refuse the whole call with store.ErrConflict if a key's
// revision there (or in this instance's copy) is not older than the one
// given, replace or remove only the keys of the call (this instance's
// own writes of the last StaleWindow are kept too, as KV may still serve
// an older shard), and write the shards, "rev" and the config snapshot
// in one bulk request.
// So two instances editing different keys of one shard keep both edits,
// and two edits of one key from the same revision end in ErrConflict for
// the second. Two writes of one shard within KV's propagation delay
// (about 60 s between locations) can still lose the first: the merge
// reads what KV serves.
//
// # Config snapshot: a start without a list
//
// keypool/v2/config holds the whole config (every shard with its version,
// every token, every provider's resets) as of one "rev". Each of its
// shard entries is exact: the content of that shard at that version,
// whatever rev the snapshot is for. An instance that reads "rev" and a
// snapshot settled for that very rev takes the snapshot whole: a start
// reads "rev" and the snapshot (two reads, one request; the snapshot also
// says the schema, so keypool/v2/schema is read only without one) and the
// 8 usage slots: 10 reads, no list. Otherwise (no snapshot, or one for
// another rev, or not settled) it lists the namespace as before, and reads
// only the entries at a version that neither its copy nor the snapshot
// holds.
//
// Every config write (PutKeys, DeleteKeys, PutToken, DeleteToken,
// ResetUsage) reads the snapshot with its other reads and writes, in its
// bulk request, the new "rev" and a snapshot for it: the one read with
// this write's entries put in. That snapshot is not settled: KV has no
// compare-and-swap and serves values up to about 60 s old, so a writer
// cannot see a concurrent writer's shard, and the last snapshot written
// may miss it while both shards stand. So a snapshot is trusted only once
// settled: rebuilt from a listing made at least settleAfter (150 s: KV's
// propagation, the 30 s request timeout, a margin for clocks) after the
// time stamped in its rev, reading every entry whose listed version is
// not the snapshot's, and written with settled set and the same rev. The
// writer of the rev settles it at its first sync settleAfter after the
// write; any other instance that finds it still unsettled twice that
// long after (the writer died: an edge isolate) settles it, a start
// included. Why it is safe: a write committed before the rev's write is
// in such a listing; a write committed after it wrote a newer "rev", so
// once that has propagated no instance takes a snapshot of the older rev.
// A settle that races a new config write writes a snapshot whose rev is
// no longer the current one: it is not trusted, and the new writer
// settles its own. An instance that listed within settleAfter of the
// rev's stamp keeps its view marked incomplete, reads the snapshot at its
// syncs once a settled one can exist, and lists again itself when due
// (proxies before the snapshot kept such a view until the next change).
//
// Cost: a config write is one write more (the snapshot) and one read
// more (the snapshot, in the same request); settling is one list, the
// reads of the entries changed since the snapshot read, and one write,
// a few minutes after. Starts in the ~4 minutes between a config write
// and its settled snapshot being seen list as before (one list each).
// Past 20 MiB (tens of thousands of keys) a marker {"rev","tooBig":true}
// replaces the snapshot, and starts list as before.
//
// Proxies of the snapshot and before it share a namespace: the older ones
// ignore keypool/v2/config, take a stamped rev as any other value and the
// shard's "v" as an unknown field; a config write of theirs changes "rev"
// without the snapshot, so the snapshot no longer matches and the newer
// ones list, then settle a snapshot for that rev. Taking over a namespace
// written before the snapshot needs nothing else: its first starts list
// (no snapshot), and an instance that has seen its (unstamped) rev for
// twice settleAfter settles the first snapshot; a settle interrupted
// writes nothing, and the next does it again.
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
// so the relay never touches KV. A start costs 10 reads and no list when
// the snapshot is settled (above). Each instance reads "rev" every sync
// interval (one read), and the snapshot when "rev" changed (one read;
// a list only while it is not settled); it writes its usage record at
// most once per usage flush interval (stretched as above) and reads the 8
// usage slots once per usage sync interval. Usage totals are the sum of
// every instance's record, counted only from the provider's last reset
// on. TestBudgetEdgeDay runs 10 edge isolates restarting every 2–8
// minutes (about 2,800 starts) beside 2 containers for a day: about
// 43,000 reads, 210 writes and 1 list.
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
