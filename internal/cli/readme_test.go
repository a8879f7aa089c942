package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// readme returns the project's README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Issue 16 item 3: every `bosun <command>` the README shows exists.
func TestReadmeCommandsExist(t *testing.T) {
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
	known := map[string]bool{"help": true}
	for _, c := range root.Commands() {
		known[c.Name()] = true
	}
	for _, m := range regexp.MustCompile("`bosun ([a-z][a-z-]*)").FindAllStringSubmatch(readme(t), -1) {
		if !known[m[1]] {
			t.Errorf("README shows `bosun %s`, which is no command", m[1])
		}
	}
}

// Issue 16 item 3: the README lists under "Not yet" exactly the parts
// that do not exist, and does not claim them elsewhere. Each part exists
// when the file, folder or command that implements it does.
func TestReadmeNotYetMatchesTheTree(t *testing.T) {
	text := readme(t)
	start := strings.Index(text, "**Not yet**")
	if start < 0 {
		t.Fatal(`README has no "**Not yet**" list`)
	}
	end := start + strings.Index(text[start:], "\n## ")
	notYet, rest := text[start:end], text[:start]+text[end:]
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
	hasCommand := func(name string) bool {
		for _, c := range root.Commands() {
			if c.Name() == name {
				return true
			}
		}
		return false
	}
	exists := func(path string) bool {
		_, err := os.Stat(filepath.Join("..", "..", path))
		return err == nil
	}
	for _, part := range []struct {
		name    string
		present bool
		// claims are phrases that sell the part as working.
		claims []string
	}{
		{"AWS provider", exists("internal/provider/aws"), []string{"--provider aws`"}},
		{"Release channels and the rest of the lifecycle manager", hasCommand("promote"), []string{"bosun promote beta"}},
		{"Safety net", exists("internal/agent/certwatch") || hasCommand("backup"), []string{"certificate and backup safety nets"}},
		{"Observability pack", exists("deploy/helm") || exists("deploy/chart"), []string{"Helm chart installs"}},
	} {
		listed := strings.Contains(notYet, "**"+part.name+".**")
		switch {
		case !part.present && !listed:
			t.Errorf("%s does not exist, but the README's \"Not yet\" list does not say so", part.name)
		case part.present && listed:
			t.Errorf("%s exists now: take it off the README's \"Not yet\" list", part.name)
		}
		if !part.present {
			for _, c := range part.claims {
				if strings.Contains(rest, c) {
					t.Errorf("README claims %q, but the %s does not exist", c, part.name)
				}
			}
		}
	}
}
