package controlplane

import (
	"bytes"
	"io"
	"os"
	"strings"
)

// tailBytes bounds how much of a log is read to find its last lines.
const tailBytes = 64 << 10

// logTail returns the last n lines of the file at path, or a note saying why
// it could not be read. It is what start errors carry so a failed process
// explains itself without anyone opening the log.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > tailBytes {
		if _, err := f.Seek(-tailBytes, io.SeekEnd); err != nil {
			return "(reading log: " + err.Error() + ")"
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "(reading log: " + err.Error() + ")"
	}
	return lastLines(data, n)
}

// lastLines returns the last n non-empty-trailing lines of data.
func lastLines(data []byte, n int) string {
	data = bytes.TrimRight(data, "\n")
	if len(data) == 0 {
		return "(log is empty)"
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
