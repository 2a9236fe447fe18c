package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedCatalogIsValidAndSorted(t *testing.T) {
	c, err := loadCatalog("catalog.json")
	if err != nil {
		t.Fatalf("shipped catalog: %v", err)
	}
	got := c.List()
	if len(got) < 3 {
		t.Fatalf("shipped catalog has %d modules, want at least 3", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Name >= got[i].Name {
			t.Errorf("modules not sorted: %q before %q", got[i-1].Name, got[i].Name)
		}
	}
}

func TestParseCatalogRejectsInvalidCatalogs(t *testing.T) {
	const ok = `{"name":"summarize","description":"d","model":"@cf/meta/llama-3.1-8b-instruct","version":"1.0.0"}`
	tests := []struct {
		name, doc, wantInError string
	}{
		{"not JSON", `{"modules":`, "invalid JSON"},
		{"no modules key", `{}`, `missing "modules"`},
		{"unknown top-level key", `{"modules":[],"extra":1}`, "unknown field"},
		{"unknown module key", `{"modules":[{"name":"a","description":"d","model":"m","version":"1.0.0","owner":"x"}]}`, "unknown field"},
		{"trailing data", `{"modules":[]} {}`, "trailing data"},
		{"uppercase name", `{"modules":[{"name":"Sum","description":"d","model":"m","version":"1.0.0"}]}`, "name must match"},
		{"name starting with digit", `{"modules":[{"name":"1sum","description":"d","model":"m","version":"1.0.0"}]}`, "name must match"},
		{"name too long", `{"modules":[{"name":"` + strings.Repeat("a", 64) + `","description":"d","model":"m","version":"1.0.0"}]}`, "name must match"},
		{"empty model", `{"modules":[{"name":"a","description":"d","model":"","version":"1.0.0"}]}`, "model must not be empty"},
		{"version not semver", `{"modules":[{"name":"a","description":"d","model":"m","version":"v1.0"}]}`, "version must match"},
		{"description too long", `{"modules":[{"name":"a","description":"` + strings.Repeat("x", 501) + `","model":"m","version":"1.0.0"}]}`, "description"},
		{"missing field", `{"modules":[{"name":"a","model":"m","version":"1.0.0"}]}`, "all required"},
		{"duplicate names", `{"modules":[` + ok + `,` + ok + `]}`, `duplicate name "summarize"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCatalog([]byte(tt.doc))
			if err == nil {
				t.Fatalf("catalog accepted: %s", tt.doc)
			}
			if !strings.Contains(err.Error(), tt.wantInError) {
				t.Errorf("error %q does not contain %q", err, tt.wantInError)
			}
		})
	}
}

func TestParseCatalogAcceptsAnEmptyCatalog(t *testing.T) {
	c, err := parseCatalog([]byte(`{"modules":[]}`))
	if err != nil {
		t.Fatalf("empty catalog: %v", err)
	}
	if len(c.List()) != 0 {
		t.Errorf("List() = %v, want empty", c.List())
	}
}

func TestLoadCatalogNamesTheFileInErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.json")
	if _, err := loadCatalog(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v does not name %s", err, missing)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"modules":[{"name":"X"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCatalog(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: error %v does not name %s", err, bad)
	}
}

func TestModuleNameAndVersionRules(t *testing.T) {
	names := map[string]bool{
		"a": true, "summarize": true, "text-2-speech": true, strings.Repeat("a", 63): true,
		"": false, "A": false, "1a": false, "-a": false, "a_b": false, "a.b": false,
		strings.Repeat("a", 64): false, "ünicode": false, "a\n": false,
	}
	for name, want := range names {
		if got := validModuleName(name); got != want {
			t.Errorf("validModuleName(%q) = %v, want %v", name, got, want)
		}
	}
	versions := map[string]bool{
		"0.0.0": true, "1.2.3": true, "10.20.30": true,
		"": false, "1.2": false, "1.2.3.4": false, "v1.2.3": false, "1..3": false, "1.2.3-rc1": false, "1.2.3\n": false,
	}
	for v, want := range versions {
		if got := moduleVersion.MatchString(v); got != want {
			t.Errorf("version %q valid = %v, want %v", v, got, want)
		}
	}
}
