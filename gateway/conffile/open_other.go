//go:build !unix

package conffile

import (
	"fmt"
	"os"
)

// open checks that path is a regular file before opening it, since without
// O_NONBLOCK opening a named pipe would wait for a writer.
func open(path string) (*os.File, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(info.Mode()))
	}
	return os.OpenFile(path, os.O_RDONLY, 0)
}
