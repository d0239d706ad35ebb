package failure

import (
	"strings"
	"testing"
)

func TestClassString(t *testing.T) {
	want := map[Class]string{
		Success: "success", InvalidKey: "invalid_key", RateLimited: "rate_limited",
		QuotaExhausted: "quota_exhausted", Upstream: "upstream", Client: "client",
		Canceled: "canceled", Class(42): "Class(42)",
	}
	for c, w := range want {
		if got := c.String(); got != w {
			t.Errorf("Class(%d).String() = %q, want %q", c, got, w)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	want := map[Class]Action{
		InvalidKey:     {Retry: true, Disable: true},
		RateLimited:    {Retry: true, Cooldown: true},
		QuotaExhausted: {Retry: true, Cooldown: true},
		Upstream:       {Retry: true, Blame: true},
		Client:         {},
		Success:        {},
		Canceled:       {},
		Class(42):      {},
	}
	for c, w := range want {
		if got := p.For(c); got != w {
			t.Errorf("DefaultPolicy().For(%v) = %+v, want %+v", c, got, w)
		}
		var nilPolicy Policy
		if got := nilPolicy.For(c); got != w {
			t.Errorf("Policy(nil).For(%v) = %+v, want %+v", c, got, w)
		}
	}
	// Entries for unconfigurable classes are ignored.
	p[Canceled] = Action{Retry: true, Blame: true}
	p[Success] = Action{Blame: true}
	if p.For(Canceled) != (Action{}) || p.For(Success) != (Action{}) {
		t.Error("For(Canceled/Success) must stay the zero Action")
	}
	// Copies are independent.
	p[Upstream] = Action{}
	if DefaultPolicy().For(Upstream) != want[Upstream] {
		t.Error("DefaultPolicy returned a shared map")
	}
	const s = "invalid_key=retry+disable,rate_limited=retry+cooldown,quota_exhausted=retry+cooldown,upstream=retry+blame,client=none"
	if got := DefaultPolicy().String(); got != s {
		t.Errorf("String() = %q, want %q", got, s)
	}
}

func TestParsePolicy(t *testing.T) {
	def := DefaultPolicy()
	with := func(kv map[Class]Action) Policy {
		p := DefaultPolicy()
		for c, a := range kv {
			p[c] = a
		}
		return p
	}
	good := []struct {
		in   string
		want Policy
	}{
		{"", def},
		{"  ,, ", def},
		{"upstream=retry,rate_limited=retry+cooldown,client=none,invalid_key=retry+disable",
			with(map[Class]Action{Upstream: {Retry: true}})},
		{"client=retry+blame", with(map[Class]Action{Client: {Retry: true, Blame: true}})},
		{" Quota-Exhausted = Cooldown + Retry ,", with(map[Class]Action{QuotaExhausted: {Retry: true, Cooldown: true}})},
		{"invalid_key=none", with(map[Class]Action{InvalidKey: {}})},
		{"upstream=retry+disable+cooldown+blame", with(map[Class]Action{Upstream: {Retry: true, Disable: true, Cooldown: true, Blame: true}})},
	}
	for _, tt := range good {
		got, err := ParsePolicy(tt.in)
		if err != nil {
			t.Errorf("ParsePolicy(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want.String() || len(got) != len(tt.want) {
			t.Errorf("ParsePolicy(%q) = %v, want %v", tt.in, got, tt.want)
		}
		// String round-trips.
		again, err := ParsePolicy(got.String())
		if err != nil || again.String() != got.String() {
			t.Errorf("ParsePolicy(%q).String() does not round-trip: %v, %v", tt.in, again, err)
		}
	}

	bad := []struct{ in, want string }{
		{"upstream", `entry "upstream": want class=action`},
		{"bogus=retry", `unknown class "bogus" (want one of invalid_key, rate_limited, quota_exhausted, upstream, client)`},
		{"success=retry", `class "success" cannot be configured`},
		{"canceled=none", `class "canceled" cannot be configured`},
		{"upstream=retyr", `unknown action "retyr" (want none, or retry, disable, cooldown, blame joined by '+')`},
		{"upstream=", `entry "upstream=": no action`},
		{"upstream=retry+", `empty action word`},
		{"upstream=retry,cooldown", `entry "cooldown": want class=action`},
		{"upstream=none+retry", `"none" cannot be combined`},
		{"upstream=retry+retry", `action "retry" given twice`},
		{"client=none,client=retry", `entry "client=retry": class client given twice`},
		{"upstream=retry;client=none", `unknown action "retry;client=none"`},
	}
	for _, tt := range bad {
		p, err := ParsePolicy(tt.in)
		if err == nil {
			t.Errorf("ParsePolicy(%q) = %v, want an error", tt.in, p)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "failure policy: ") {
			t.Errorf("ParsePolicy(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
		if p != nil {
			t.Errorf("ParsePolicy(%q) returned a policy with its error", tt.in)
		}
	}
}

func TestActionString(t *testing.T) {
	tests := []struct {
		a    Action
		want string
	}{
		{Action{}, "none"},
		{Action{Blame: true, Retry: true}, "retry+blame"},
		{Action{Retry: true, Disable: true, Cooldown: true, Blame: true}, "retry+disable+cooldown+blame"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.a, got, tt.want)
		}
	}
}
