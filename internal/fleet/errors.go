package fleet

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with the fleet directory, at a file and line.
type Problem struct {
	// File is relative to the fleet directory.
	File string
	// Line is 1-based; 0 when the problem concerns the whole file.
	Line int
	// Message says what is wrong and what was expected.
	Message string
}

// String formats the problem as file:line: message.
func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Message)
}

// LoadError lists every problem found while loading a fleet, so that one run
// reports all of them.
type LoadError struct {
	// Problems are in file, then line order.
	Problems []Problem
}

// Error lists every problem, one per line.
func (e *LoadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fleet has %d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

type problems struct{ list []Problem }

func (ps *problems) add(file string, line int, format string, args ...any) {
	ps.list = append(ps.list, Problem{File: file, Line: line, Message: fmt.Sprintf(format, args...)})
}
