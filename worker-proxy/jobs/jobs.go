// Package jobs runs admin operations over many keys in the background
// (imports, deletions and tests of up to 100,000 keys) and reports their
// progress: a Manager starts jobs, keeps the running ones and the most
// recent finished ones, and cancels them on request.
package jobs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// ErrBusy is returned by Start when the limit of running jobs is reached.
var ErrBusy = errors.New("too many jobs running")

// Job is one background operation. Its methods are safe for concurrent use.
type Job struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	st       adminapi.JobStatus
	started  time.Time
	finished time.Time
	canceled bool
}

// ID returns the job's id.
func (j *Job) ID() string { return j.st.ID }

// Status returns a copy of the job's status.
func (j *Job) Status() adminapi.JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.st
	st.Counts = make(map[string]int, len(j.st.Counts))
	for k, v := range j.st.Counts {
		st.Counts[k] = v
	}
	st.Items = append([]adminapi.JobItem{}, j.st.Items...)
	st.StartedAt, st.FinishedAt = adminapi.FormatTime(j.started), adminapi.FormatTime(j.finished)
	return st
}

// Cancel asks a running job to stop; what it finished stays done. It
// reports false if the job had already ended.
func (j *Job) Cancel() bool {
	j.mu.Lock()
	running := j.st.State == adminapi.JobRunning
	if running {
		j.canceled = true
	}
	j.mu.Unlock()
	if running {
		j.cancel()
	}
	return running
}

// Done is closed when the job has ended.
func (j *Job) Done() <-chan struct{} { return j.done }

// Count records n more items with the given outcome.
func (j *Job) Count(outcome string, n int) {
	j.mu.Lock()
	j.st.Counts[outcome] += n
	j.st.Done += n
	j.mu.Unlock()
}

// Report records an item that did not simply succeed and counts it under
// its Status. Only the first MaxJobReportItems are kept.
func (j *Job) Report(it adminapi.JobItem) {
	j.mu.Lock()
	j.st.Counts[it.Status]++
	j.st.Done++
	if len(j.st.Items) < adminapi.MaxJobReportItems {
		j.st.Items = append(j.st.Items, it)
	} else {
		j.st.ItemsLeftOut++
	}
	j.mu.Unlock()
}

// Spec describes a job to start.
type Spec struct {
	Kind        string
	Provider    string
	Total       int
	Concurrency int
	// Outcomes are counted from 0, so the status names each one even
	// before it happens.
	Outcomes []string
	// Run does the work, reporting through the job; it returns when done,
	// or soon after ctx is canceled. Its error fails the job; the error's
	// text is shown to the operator and must hold no secret.
	Run func(ctx context.Context, j *Job) error
}

// Manager starts jobs and remembers them.
type Manager struct {
	maxRunning int
	keep       int
	now        func() time.Time

	mu   sync.Mutex
	jobs []*Job // oldest first
}

// NewManager returns a Manager that runs at most maxRunning jobs at once
// and remembers the keep most recent finished ones. A nil now means
// time.Now.
func NewManager(maxRunning, keep int, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{maxRunning: max(maxRunning, 1), keep: max(keep, 1), now: now}
}

// Start runs spec in a new goroutine and returns its job, or ErrBusy. The
// job does not end with ctx's cancellation, only its values are kept (a
// request's context ends with its answer).
func (m *Manager) Start(ctx context.Context, spec Spec) (*Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	running := 0
	for _, j := range m.jobs {
		select {
		case <-j.done:
		default:
			running++
		}
	}
	if running >= m.maxRunning {
		return nil, fmt.Errorf("%w: at most %d at once; wait for one to finish or cancel it", ErrBusy, m.maxRunning)
	}
	jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &Job{cancel: cancel, done: make(chan struct{}), started: m.now().UTC()}
	j.st = adminapi.JobStatus{
		ID: "job_" + rand.Text()[:12], Kind: spec.Kind, State: adminapi.JobRunning, Provider: spec.Provider,
		Total: spec.Total, Concurrency: spec.Concurrency, Counts: map[string]int{}, Items: []adminapi.JobItem{},
	}
	for _, o := range spec.Outcomes {
		j.st.Counts[o] = 0
	}
	m.jobs = append(m.jobs, j)
	m.prune()
	go func() {
		defer close(j.done)
		defer cancel()
		err := spec.Run(jctx, j)
		j.mu.Lock()
		defer j.mu.Unlock()
		j.finished = m.now().UTC()
		switch {
		case j.canceled:
			j.st.State = adminapi.JobCanceled
		case err != nil:
			j.st.State, j.st.Error = adminapi.JobFailed, err.Error()
		default:
			j.st.State = adminapi.JobDone
		}
	}()
	return j, nil
}

// prune forgets the oldest finished jobs beyond keep; m.mu must be held.
func (m *Manager) prune() {
	finished := 0
	for _, j := range m.jobs {
		select {
		case <-j.done:
			finished++
		default:
		}
	}
	for i := 0; i < len(m.jobs) && finished > m.keep; {
		select {
		case <-m.jobs[i].done:
			m.jobs = append(m.jobs[:i], m.jobs[i+1:]...)
			finished--
		default:
			i++
		}
	}
}

// Get returns the job with the given id.
func (m *Manager) Get(id string) (*Job, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune()
	for _, j := range m.jobs {
		if j.st.ID == id {
			return j, true
		}
	}
	return nil, false
}

// List returns the status of every remembered job, newest first, without
// their items.
func (m *Manager) List() []adminapi.JobStatus {
	m.mu.Lock()
	m.prune()
	jobs := append([]*Job(nil), m.jobs...)
	m.mu.Unlock()
	out := make([]adminapi.JobStatus, 0, len(jobs))
	for i := len(jobs) - 1; i >= 0; i-- {
		st := jobs[i].Status()
		st.ItemsLeftOut += len(st.Items)
		st.Items = []adminapi.JobItem{}
		out = append(out, st)
	}
	return out
}
