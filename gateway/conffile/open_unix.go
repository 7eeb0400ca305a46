//go:build unix

package conffile

import (
	"os"
	"syscall"
)

// open opens path for reading without blocking: opening a named pipe
// otherwise waits for a writer. O_NONBLOCK changes nothing for a regular
// file, the only kind Read goes on to read.
func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
