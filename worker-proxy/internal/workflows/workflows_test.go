package workflows

import (
	"bytes"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/rhysd/actionlint"
)

// TestWorkflowsLint runs actionlint over .github/workflows: syntax,
// expressions, action inputs, job dependencies.
func TestWorkflowsLint(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	files, err := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no workflows found under %s: %v", root, err)
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{Oneline: true})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", filepath.Base(e.Filepath), e.Line, e.Column, e.Message, e.Kind)
	}
	if len(files) < 2 {
		t.Errorf("expected ci.yml and release.yml, found %v", files)
	}
}
