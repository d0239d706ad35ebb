package folder

import (
	"os"
	"slices"
	"testing"
)

// TestAssetsMatchTheDirectory fails when a file is added to (or removed
// from) the build's assets without this list: the deploy tool would then
// refuse a folder the build wrote, or the build would not copy the file.
func TestAssetsMatchTheDirectory(t *testing.T) {
	entries, err := os.ReadDir("../build/assets")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
	}
	want := slices.Clone(Assets)
	slices.Sort(want)
	slices.Sort(onDisk)
	if !slices.Equal(onDisk, want) {
		t.Fatalf("build/assets holds %v; folder.Assets lists %v", onDisk, want)
	}
	for _, name := range append(Files(), onDisk...) {
		if !Has(name) {
			t.Errorf("Has(%q) = false", name)
		}
	}
	if Has("notes.txt") || Has("") {
		t.Error("Has accepts a file the build does not write")
	}
}
