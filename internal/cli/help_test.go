package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bosun-platform/bosun/internal/cli/iostreams"
)

// valueName is what a flag's help may show after its name: one word
// (pflag's type name, or a word the usage text marks with backquotes).
var valueName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9]*$`)

// Every command's help renders, and every flag in it reads correctly:
// pflag takes the first backquoted word of a usage text as the flag's
// value name, so "state directory of `bosun up`" showed as
// "--local-cloud bosun up". A value name is one word that is not a command
// (bosun, up, agent, ...), a boolean flag has none, and no backquote is
// left in the text.
func TestEveryFlagHelpReads(t *testing.T) {
	root := NewCommand(iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}})
	commands := map[string]bool{"bosun": true}
	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		commands[c.Name()] = true
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	flags := 0
	for _, c := range all {
		if c.Name() == "help" || c.Name() == "completion" || c.HasParent() && c.Parent().Name() == "completion" {
			continue
		}
		path := strings.Fields(c.CommandPath())[1:]
		var out bytes.Buffer
		if err := Run(context.Background(), iostreams.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}, append(path, "--help")); err != nil {
			t.Errorf("bosun %s --help: %v", strings.Join(path, " "), err)
			continue
		}
		help := out.String()
		check := func(f *pflag.Flag) {
			flags++
			name, usage := pflag.UnquoteUsage(f)
			where := c.CommandPath() + " --" + f.Name
			switch {
			case f.Value.Type() == "bool" && name != "":
				t.Errorf("%s: a boolean flag shows a value name %q", where, name)
			case f.Value.Type() != "bool" && (!valueName.MatchString(name) || commands[name]):
				t.Errorf("%s: value name %q (from the usage text %q); want one word that names the value", where, name, f.Usage)
			}
			if strings.Contains(usage, "`") {
				t.Errorf("%s: a backquote is left in the help text %q", where, usage)
			}
			line := "--" + f.Name
			if name != "" {
				line += " " + name
			}
			if !strings.Contains(help, line+" ") && !strings.Contains(help, line+"\n") {
				t.Errorf("%s: the help lacks %q:\n%s", where, line, help)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.InheritedFlags().VisitAll(check)
	}
	if flags < 100 {
		t.Errorf("checked %d flags in %d commands; expected every command's", flags, len(all))
	}
}
