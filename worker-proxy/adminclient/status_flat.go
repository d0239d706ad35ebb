package adminclient

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Decoding a 10,000-key status (about 5 MB) with encoding/json takes about
// a second in wasm on a small machine. The browser's JSON.parse takes a few
// tens of milliseconds: statusFlattenJS parses there and flattens the
// answer into one string of records (\x1e) and fields (\x1f), which Go
// splits without reflection. null is \x00; tags are joined with \x1d;
// control characters inside strings become spaces (only the tag joiner
// survives, and only between tags). A key's model rests are one field:
// model, until and reason of each rest in turn, joined with \x1d.
const statusFlattenJS = `
const F = "\x1f", R = "\x1e", T = "\x1d", N = "\x00";
const s = v => (v === null || v === undefined) ? N : String(v).replace(/[\x00-\x1c\x1e\x1f]/g, " ");
const b = v => v ? "1" : "0";
const c = v => (v === null || v === undefined) ? "" : String(v).replace(/[\x00-\x1f]/g, " ");
const o = JSON.parse(text);
const st = o.store || {};
const out = ["S" + F + [st.backend, b(st.ok), st.since, st.detail, o.totalKeys, o.activeKeys, o.availableKeys, o.coolingKeys, o.disabledKeys, o.projects, o.keysWithoutProject].map(s).join(F)];
for (const p of (o.providers || [])) {
  out.push("P" + F + [p.provider, p.totalKeys, p.activeKeys, p.availableKeys, p.coolingKeys, p.disabledKeys,
    p.restingModelPairs, p.projects, p.keysWithoutProject, p.promptTokens, p.completionTokens].map(s).join(F));
  for (const k of (p.keys || [])) {
    const e = k.lastError;
    out.push("K" + F + [k.id, k.provider, b(k.isActive), k.usage, k.lastUsed, k.maskedKey, k.state, b(k.available),
      k.maxRequests, k.weight, k.requests, k.successes, k.failures, k.successRate, k.inFlight,
      e ? e.status : null, e ? e.message : null, e ? e.at : null,
      k.consecutiveFailures, k.coolingUntil, k.coolingReason, k.disabledReason, k.disabledAt, k.description,
      (k.tags || []).map(t => String(t).replace(/[\x00-\x1f]/g, " ")).join(T), k.createdAt, k.updatedAt,
      k.project, b(k.projectLearned), k.proxy, k.promptTokens, k.completionTokens,
      (k.modelCooldowns || []).flatMap(m => [c(m.model), c(m.until), c(m.reason)]).join(T)].map(s).join(F));
  }
}
return out.join(R);
`

const keyFields = 33

// parseFlat fills st from flat. Every provider's keys lie in one array,
// in order (see adminapi.StatusResponse.AllKeys), so the dashboard lists
// them all without a copy; they must not be appended to.
func parseFlat(flat string, st *adminapi.StatusResponse) error {
	var perr error
	var all []adminapi.KeyStatus // backs every provider's Keys
	str := func(f string) string {
		if f == "\x00" {
			return ""
		}
		return f
	}
	strp := func(f string) *string {
		if f == "\x00" {
			return nil
		}
		return &f
	}
	i64 := func(f string) int64 {
		if f == "\x00" || f == "" {
			return 0
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			fl, ferr := strconv.ParseFloat(f, 64)
			if ferr != nil && perr == nil {
				perr = err
			}
			n = int64(fl)
		}
		return n
	}
	for _, rec := range strings.Split(flat, "\x1e") {
		f := strings.Split(rec, "\x1f")
		switch f[0] {
		case "S":
			if len(f) != 12 {
				return fmt.Errorf("status record has %d fields", len(f))
			}
			st.Store = adminapi.StoreHealth{Backend: str(f[1]), OK: f[2] == "1", Since: strp(f[3]), Detail: str(f[4])}
			st.TotalKeys, st.ActiveKeys, st.AvailableKeys = int(i64(f[5])), int(i64(f[6])), int(i64(f[7]))
			st.CoolingKeys, st.DisabledKeys = int(i64(f[8])), int(i64(f[9]))
			st.Projects, st.KeysWithoutProject = int(i64(f[10])), int(i64(f[11]))
			all = make([]adminapi.KeyStatus, 0, max(st.TotalKeys, 0))
		case "P":
			if len(f) != 12 {
				return fmt.Errorf("provider record has %d fields", len(f))
			}
			st.Providers = append(st.Providers, adminapi.ProviderStatus{
				Provider: str(f[1]), TotalKeys: int(i64(f[2])), ActiveKeys: int(i64(f[3])), AvailableKeys: int(i64(f[4])),
				CoolingKeys: int(i64(f[5])), DisabledKeys: int(i64(f[6])), Keys: all[len(all):len(all)],
				RestingModelPairs: int(i64(f[7])), Projects: int(i64(f[8])), KeysWithoutProject: int(i64(f[9])),
				PromptTokens: i64(f[10]), CompletionTokens: i64(f[11]),
			})
		case "K":
			if len(f) != keyFields+1 || len(st.Providers) == 0 {
				return fmt.Errorf("key record has %d fields", len(f))
			}
			f = f[1:]
			k := adminapi.KeyStatus{
				ID: str(f[0]), Provider: str(f[1]), IsActive: f[2] == "1", Usage: str(f[3]), LastUsed: strp(f[4]),
				MaskedKey: str(f[5]), State: str(f[6]), Available: f[7] == "1",
				MaxRequests: i64(f[8]), Weight: int(i64(f[9])), Requests: i64(f[10]), Successes: i64(f[11]), Failures: i64(f[12]),
				InFlight: i64(f[14]), ConsecutiveFailures: i64(f[18]), CoolingUntil: strp(f[19]), CoolingReason: str(f[20]),
				DisabledReason: str(f[21]), DisabledAt: strp(f[22]), Description: str(f[23]), CreatedAt: strp(f[25]), UpdatedAt: strp(f[26]),
				Tags: []string{}, Project: str(f[27]), ProjectLearned: f[28] == "1", Proxy: str(f[29]),
				PromptTokens: i64(f[30]), CompletionTokens: i64(f[31]),
			}
			if rests := f[32]; rests != "" && rests != "\x00" {
				r := strings.Split(rests, "\x1d")
				for i := 0; i+2 < len(r); i += 3 {
					mc := adminapi.ModelCooldown{Model: r[i], Reason: r[i+2]}
					if r[i+1] != "" {
						mc.Until = &r[i+1]
					}
					k.ModelCooldowns = append(k.ModelCooldowns, mc)
				}
			}
			if f[13] != "\x00" {
				k.SuccessRate, _ = strconv.ParseFloat(f[13], 64)
			}
			if f[15] != "\x00" {
				k.LastError = &adminapi.LastError{Status: int(i64(f[15])), Message: str(f[16]), At: strp(f[17])}
			}
			if f[24] != "" && f[24] != "\x00" {
				k.Tags = strings.Split(f[24], "\x1d")
			}
			p := &st.Providers[len(st.Providers)-1]
			if len(all) < cap(all) && len(p.Keys) < cap(p.Keys) {
				all = append(all, k) // p.Keys's next element, in the shared array
				p.Keys = p.Keys[:len(p.Keys)+1]
			} else { // more keys than the totals said: a fresh array for the rest
				p.Keys = append(p.Keys, k)
				all = all[len(all):len(all):len(all)]
			}
		default:
			return fmt.Errorf("unknown record %q", f[0])
		}
	}
	return perr
}
