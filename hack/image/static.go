package main

import (
	"debug/elf"
	"fmt"
)

// checkStatic refuses a binary that needs a dynamic loader: the image has
// no libc (build with CGO_ENABLED=0).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s: not an ELF executable, %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s: dynamically linked (it names an interpreter); the image has no libc: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}
