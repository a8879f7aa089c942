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
	for _, m := range regexp.MustCompile("`bosun ([a-z][a-z0-9-]*)").FindAllStringSubmatch(readme(t), -1) {
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
	type item struct {
		// phrase names the item in the part's "Not yet" entry.
		phrase  string
		present bool
	}
	for _, part := range []struct {
		name    string
		present bool
		// claims are phrases that sell the part as working.
		claims []string
		// items, for a part that lands piece by piece: the entry names
		// exactly the items still missing.
		items []item
	}{
		{"AWS provider", exists("internal/provider/aws"), []string{"--provider aws`"}, nil},
		{"Release channels and the rest of the lifecycle manager", hasCommand("promote"), []string{"bosun promote beta"}, nil},
		{"Safety net", false, []string{"certificate and backup safety nets"}, []item{
			{"certificate expiry watch in the agent", exists("internal/agent/certwatch")},
			{"scheduled backups", exists("internal/agent/backupschedule")},
			{"DR drill", hasCommand("drill")},
			{"admission policies", exists("examples/fleet/manifests/admission")},
			{"emergency access", hasCommand("access")},
			{"`bosun certs`", hasCommand("certs")},
			{"`bosun backup`", hasCommand("backup")},
		}},
		{"Observability pack", false, []string{"the local fleet serves the metrics API"}, []item{
			{"Helm chart", exists("charts/bosun-agent/Chart.yaml")},
			{"daemonless image build", exists("hack/image/main.go")},
			{"metrics API on the local fleet", exists("internal/controlplane/metricsserver.go")},
			{"exports certificate expiry", exists("internal/agent/certwatch")},
		}},
	} {
		if part.items != nil {
			part.present = true
			for _, it := range part.items {
				part.present = part.present && it.present
			}
			entry := notYet
			if i := strings.Index(notYet, "**"+part.name+".**"); i >= 0 {
				entry = notYet[i:]
				if j := strings.Index(entry[2:], "\n- **"); j >= 0 {
					entry = entry[:j+2]
				}
			} else {
				entry = ""
			}
			entry = strings.Join(strings.Fields(entry), " ")
			for _, it := range part.items {
				named := strings.Contains(entry, it.phrase)
				switch {
				case !it.present && !named:
					t.Errorf("%s: %s does not exist, but the README's \"Not yet\" entry does not name it", part.name, it.phrase)
				case it.present && named:
					t.Errorf("%s: %s exists now: take it out of the README's \"Not yet\" entry", part.name, it.phrase)
				}
			}
		}
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
