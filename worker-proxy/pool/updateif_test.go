package pool

import (
	"errors"
	"testing"
	"time"
)

func TestUpdateIfRefusesAChangedKey(t *testing.T) {
	p := New(nil)
	p.Load([]Key{{ID: "a", Provider: "openai", Secret: "sk-test-fake-a", IsActive: true, Revision: 1}}, nil)
	e, _ := p.Entry("a")
	edit := e.Key()
	edit.Description = "edited"
	edit.Revision = 2
	p.Disable(e, "invalid key", time.Unix(1, 0)) // revision 2, behind the editor's back
	if err := p.UpdateIf(edit, 1); !errors.Is(err, ErrChanged) {
		t.Fatalf("UpdateIf over a changed key = %v, want ErrChanged", err)
	}
	if k := e.Key(); k.DisabledReason != "invalid key" || k.Description != "" {
		t.Fatalf("UpdateIf changed the key although it refused: %+v", k)
	}
	cur := e.Key()
	cur.Description, cur.Revision = "edited", 3
	if err := p.UpdateIf(cur, 2); err != nil {
		t.Fatal(err)
	}
	if k := e.Key(); k.DisabledReason != "invalid key" || k.Description != "edited" || k.Revision != 3 {
		t.Fatalf("after UpdateIf: %+v", k)
	}
	if p.Servable("openai") != 0 {
		t.Fatal("the disabled key is servable after the edit")
	}
	if err := p.UpdateIf(Key{ID: "nope"}, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateIf of an unknown key = %v", err)
	}
}
