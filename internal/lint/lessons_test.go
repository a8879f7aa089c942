package lint

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

const (
	repoRoot    = "../.."
	lessonsFile = "docs/lessons.md"
)

var (
	lessonID      = regexp.MustCompile(`\bL\d\d\b`)
	lessonHeading = regexp.MustCompile(`(?m)^### (L\d\d): \S`)
	testName      = regexp.MustCompile("`(Test[A-Za-z0-9_]+)`")
	testFunc      = regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`)
)

// repoFiles calls fn with the path and text of every Go, Markdown, YAML
// and template file of the repository.
func repoFiles(t *testing.T, fn func(path, text string)) {
	t.Helper()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != repoRoot && (strings.HasPrefix(name, ".") || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".yaml", ".yml", ".tpl":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		fn(filepath.ToSlash(rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// docs/lessons.md is the project's own account of the lessons: every
// lesson ID that code, tests, manifests or docs name has its section
// there, every lint rule is named in it, and every test it cites exists.
func TestEveryLessonIDIsDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, lessonsFile))
	if err != nil {
		t.Fatalf("%s: %v", lessonsFile, err)
	}
	doc := string(data)
	documented := map[string]bool{}
	for _, m := range lessonHeading.FindAllStringSubmatch(doc, -1) {
		if documented[m[1]] {
			t.Errorf("%s: %s has two sections", lessonsFile, m[1])
		}
		documented[m[1]] = true
	}
	if len(documented) < 58 {
		t.Errorf("%s: %d lesson sections, want L01 to L58", lessonsFile, len(documented))
	}

	usedIn := map[string][]string{}
	tests := map[string]bool{}
	repoFiles(t, func(path, text string) {
		for _, id := range lessonID.FindAllString(text, -1) {
			if n := len(usedIn[id]); n == 0 || usedIn[id][n-1] != path {
				usedIn[id] = append(usedIn[id], path)
			}
		}
		if strings.HasSuffix(path, "_test.go") {
			for _, m := range testFunc.FindAllStringSubmatch(text, -1) {
				tests[m[1]] = true
			}
		}
	})
	ids := make([]string, 0, len(usedIn))
	for id := range usedIn {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !documented[id] {
			t.Errorf("%s is used in %s but has no section in %s", id, strings.Join(usedIn[id], ", "), lessonsFile)
		}
	}
	if len(ids) < 40 {
		t.Errorf("found %d lesson IDs in the repository; is %s the repository root?", len(ids), repoRoot)
	}

	for _, r := range Rules() {
		if r.Lesson() != "" && !strings.Contains(doc, "`"+r.Name+"`") {
			t.Errorf("rule %s is not named in %s", r.Name, lessonsFile)
		}
	}
	for _, m := range testName.FindAllStringSubmatch(doc, -1) {
		if !tests[m[1]] {
			t.Errorf("%s cites %s, which no test file defines", lessonsFile, m[1])
		}
	}
}
