package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

func TestJobLifecycle(t *testing.T) {
	m := NewManager(1, 2, nil)
	release := make(chan struct{})
	j, err := m.Start(t.Context(), Spec{Kind: "test", Total: 2000, Outcomes: []string{"passed", "failed"}, Run: func(ctx context.Context, j *Job) error {
		j.Count("passed", 500)
		for i := range 1500 {
			j.Report(adminapi.JobItem{Index: i, Status: "failed"})
		}
		<-release
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(t.Context(), Spec{Run: func(context.Context, *Job) error { return nil }}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second job with a limit of one: %v", err)
	}
	close(release)
	<-j.Done()
	st := j.Status()
	if st.State != adminapi.JobDone || st.Done != 2000 || st.Counts["passed"] != 500 || st.Counts["failed"] != 1500 ||
		len(st.Items) != adminapi.MaxJobReportItems || st.ItemsLeftOut != 500 || st.FinishedAt == nil {
		t.Fatalf("status: state %s done %d counts %v items %d left out %d", st.State, st.Done, st.Counts, len(st.Items), st.ItemsLeftOut)
	}
	if j.Cancel() {
		t.Fatal("a finished job was canceled")
	}
	// Failed and canceled jobs; only the two most recent finished are kept.
	f, _ := m.Start(t.Context(), Spec{Run: func(context.Context, *Job) error { return errors.New("store down") }})
	<-f.Done()
	c, _ := m.Start(t.Context(), Spec{Run: func(ctx context.Context, _ *Job) error { <-ctx.Done(); return ctx.Err() }})
	c.Cancel()
	<-c.Done()
	if st := f.Status(); st.State != adminapi.JobFailed || st.Error != "store down" {
		t.Fatalf("failed job: %+v", st)
	}
	if st := c.Status(); st.State != adminapi.JobCanceled {
		t.Fatalf("canceled job: %+v", st)
	}
	list := m.List()
	if len(list) != 2 || list[0].ID != c.ID() || list[1].ID != f.ID() {
		t.Fatalf("list: %+v", list)
	}
	if _, ok := m.Get(j.ID()); ok {
		t.Fatal("the oldest finished job was not forgotten")
	}
}

// A job outlives the request that started it.
func TestJobOutlivesItsRequest(t *testing.T) {
	m := NewManager(1, 1, nil)
	ctx, cancel := context.WithCancel(t.Context())
	release := make(chan struct{})
	j, _ := m.Start(ctx, Spec{Run: func(ctx context.Context, _ *Job) error {
		<-release
		return ctx.Err()
	}})
	cancel()
	close(release)
	<-j.Done()
	if st := j.Status(); st.State != adminapi.JobDone {
		t.Fatalf("state %s, want done", st.State)
	}
}
