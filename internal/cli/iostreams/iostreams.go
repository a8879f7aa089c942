// Package iostreams carries the standard streams into commands, so tests can
// run any command against buffers.
package iostreams

import (
	"io"
	"os"
)

// IOStreams are a command's input and outputs.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Standard returns the process's own streams.
func Standard() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }
