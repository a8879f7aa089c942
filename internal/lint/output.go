package lint

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteText writes the report for people: one finding per line with its
// hint below, then a summary.
func WriteText(w io.Writer, rep *Report, showSuppressed bool) error {
	for _, f := range rep.Findings {
		if f.Suppressed && !showSuppressed {
			continue
		}
		sev := string(f.Severity)
		if f.Suppressed {
			sev = "suppressed"
		}
		where := ""
		if f.Cluster != "" {
			where = " [" + f.Cluster
			if f.Object != "" {
				where += " " + f.Object
			}
			where += "]"
		}
		if _, err := fmt.Fprintf(w, "%s: %s %s: %s%s\n", f.Location(), sev, f.Rule, f.Message, where); err != nil {
			return fmt.Errorf("writing lint report, %w", err)
		}
		extra := f.Hint
		label := "hint"
		if f.Suppressed {
			extra, label = f.Reason, "reason"
		}
		if extra != "" {
			if _, err := fmt.Fprintf(w, "    %s: %s\n", label, extra); err != nil {
				return fmt.Errorf("writing lint report, %w", err)
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d error(s), %d warning(s), %d suppressed\n", rep.Errors, rep.Warnings, rep.Suppressed)
	if err != nil {
		return fmt.Errorf("writing lint report, %w", err)
	}
	return nil
}

// WriteJSON writes the report as indented JSON; the field names are stable.
func WriteJSON(w io.Writer, rep *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing lint report, %w", err)
	}
	return nil
}
