package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeClaimsOnlyTestSwitchesThatExist keeps README.md honest about how the tests can be
// narrowed: a `go test -short` claim needs a test that checks testing.Short().
func TestReadmeClaimsOnlyTestSwitchesThatExist(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "-short") {
		return
	}
	tests, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range tests {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(src), "testing.Short()") && name != "readme_test.go" {
			return
		}
	}
	t.Error("README.md says tests are skipped with -short, but no test checks testing.Short()")
}
