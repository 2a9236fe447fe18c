package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Module (generated from the contract's Module schema) is one worker module of the catalog.

// Catalog is the read-only set of worker modules, loaded once at startup.
type Catalog struct {
	sorted []Module
	byName map[string]Module
}

// maxCatalogBytes bounds the file read at startup; a catalog is a few kilobytes.
const maxCatalogBytes = 4 << 20

// loadCatalog reads and validates the catalog file at path.
func loadCatalog(path string) (*Catalog, error) {
	f, err := os.Open(path) // #nosec G304 -- CATALOG_PATH is the operator's config, read once at start-up
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCatalogBytes+1))
	if err != nil {
		return nil, fmt.Errorf("catalog %s: read: %w", path, err)
	}
	if len(data) > maxCatalogBytes {
		return nil, fmt.Errorf("catalog %s: larger than %d bytes", path, maxCatalogBytes)
	}
	c, err := parseCatalog(data)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// parseCatalog decodes {"modules":[...]} strictly and checks every module against the
// contract's Module schema, reporting all problems at once.
func parseCatalog(data []byte) (*Catalog, error) {
	// Pointer fields tell a missing key from an empty value: the contract requires all four.
	type entry struct {
		Name        *string `json:"name"`
		Description *string `json:"description"`
		Model       *string `json:"model"`
		Version     *string `json:"version"`
	}
	var doc struct {
		Modules *[]entry `json:"modules"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: trailing data after the catalog object")
	}
	if doc.Modules == nil {
		return nil, errors.New(`missing "modules" array`)
	}

	var problems []string
	modules := make([]Module, 0, len(*doc.Modules))
	byName := make(map[string]Module, len(*doc.Modules))
	for i, e := range *doc.Modules {
		if e.Name == nil || e.Description == nil || e.Model == nil || e.Version == nil {
			problems = append(problems, fmt.Sprintf("modules[%d]: name, description, model and version are all required", i))
			continue
		}
		m := Module{Name: *e.Name, Description: *e.Description, Model: *e.Model, Version: *e.Version}
		for _, p := range m.problems() {
			problems = append(problems, fmt.Sprintf("modules[%d] (%q): %s", i, m.Name, p))
		}
		if _, dup := byName[m.Name]; dup {
			problems = append(problems, fmt.Sprintf("modules[%d]: duplicate name %q", i, m.Name))
		}
		byName[m.Name] = m
		modules = append(modules, m)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}

	slices.SortFunc(modules, func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	return &Catalog{sorted: modules, byName: byName}, nil
}

func (m Module) problems() []string {
	var out []string
	if !validModuleName(m.Name) {
		out = append(out, "name must match "+ModuleNamePattern)
	}
	if utf8.RuneCountInString(m.Description) > ModuleDescriptionMaxLength {
		out = append(out, fmt.Sprintf("description must be at most %d characters", ModuleDescriptionMaxLength))
	}
	if utf8.RuneCountInString(m.Model) < ModuleModelMinLength {
		out = append(out, "model must not be empty")
	}
	if !moduleVersion.MatchString(m.Version) {
		out = append(out, "version must match "+ModuleVersionPattern)
	}
	return out
}

// List returns the modules sorted by name. The slice is shared: callers must not modify it.
func (c *Catalog) List() []Module { return c.sorted }

// Get returns the module called name.
func (c *Catalog) Get(name string) (Module, bool) {
	m, ok := c.byName[name]
	return m, ok
}

// The contract's rules, compiled once (contract_rules.gen.go holds them as generated).
var (
	moduleName    = regexp.MustCompile(ModuleNamePattern)
	moduleVersion = regexp.MustCompile(ModuleVersionPattern)
)

// validModuleName applies the contract's ModuleName pattern.
func validModuleName(s string) bool { return moduleName.MatchString(s) }
