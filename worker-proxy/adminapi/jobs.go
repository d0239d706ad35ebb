package adminapi

// Job kinds and states, as JobStatus reports them.
const (
	JobImport = "import" // POST /admin/jobs/import
	JobDelete = "delete" // POST /admin/jobs/delete
	JobTest   = "test"   // POST /admin/jobs/test

	JobRunning  = "running"
	JobDone     = "done"
	JobFailed   = "failed"   // stopped by an error; Error says which, Done how far it got
	JobCanceled = "canceled" // stopped by DELETE /admin/jobs/{id}
)

// MaxJobItems bounds the keys or ids of one job.
const MaxJobItems = 100000

// JobItem is one item of a job that did not simply succeed: an import
// line that was a duplicate or invalid, an id not found, a failed test.
type JobItem struct {
	Index     int    `json:"index"` // position in the request's list, or in the job's selection
	KeyID     string `json:"keyId,omitempty"`
	MaskedKey string `json:"maskedKey,omitempty"`
	Status    string `json:"status"` // duplicate, invalid, not_found, or a test's class
	Error     string `json:"error,omitempty"`
}

// JobStatus is a background job and its progress. Counts holds one entry
// per outcome (import: added, duplicate, invalid; delete: deleted,
// not_found; test: passed, failed); Done is their sum. Items lists the
// first MaxJobReportItems items that did not simply succeed.
type JobStatus struct {
	ID           string         `json:"id"`
	Kind         string         `json:"kind"`
	State        string         `json:"state"`
	Provider     string         `json:"provider,omitempty"`
	Total        int            `json:"total"`
	Done         int            `json:"done"`
	Counts       map[string]int `json:"counts"`
	Concurrency  int            `json:"concurrency,omitempty"`
	StartedAt    *string        `json:"startedAt"`
	FinishedAt   *string        `json:"finishedAt"`
	Error        string         `json:"error,omitempty"`
	Items        []JobItem      `json:"items"`
	ItemsLeftOut int            `json:"itemsLeftOut,omitempty"` // items beyond MaxJobReportItems
}

// MaxJobReportItems bounds JobStatus.Items.
const MaxJobReportItems = 1000

// JobList answers GET /admin/jobs: the running jobs and the most recent
// finished ones, newest first.
type JobList struct {
	Jobs []JobStatus `json:"jobs"`
}

// DeleteJobRequest is the body of POST /admin/jobs/delete.
type DeleteJobRequest struct {
	IDs []string `json:"ids"`
}

// TestJobRequest is the body of POST /admin/jobs/test: the keys named by
// IDs, or, without IDs, every key in State (default "disabled") of
// Provider (default every provider). Concurrency is how many tests run at
// once (1..MaxTestConcurrency, default DefaultTestConcurrency).
type TestJobRequest struct {
	IDs         []string `json:"ids,omitempty"`
	Provider    string   `json:"provider,omitempty"`
	State       string   `json:"state,omitempty"`
	Concurrency int      `json:"concurrency,omitempty"`
}

// Test job concurrency.
const (
	DefaultTestConcurrency = 4
	MaxTestConcurrency     = 16
)
