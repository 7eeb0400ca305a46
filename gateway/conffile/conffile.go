// Package conffile reads the gateway's configuration files (tyk.conf, API
// definitions, JS middleware, webhook templates) with limits, so that a
// file a mistake or an attacker put in place cannot stall or exhaust the
// gateway while it loads:
//
//	data, err := conffile.Read(path, conffile.DefaultMaxSize)
//	if errors.Is(err, conffile.ErrTooLarge) { ... } // the error names the file
//
// Only regular files are read (a symlink to one is fine). A named pipe
// would block the read until something writes to it, and a device such as
// /dev/zero never ends: both are refused before a byte is read, as are
// sockets and directories. So are the "regular" files of the kernel's own
// file systems (/proc, /sys): /proc/kmsg passes for a regular file of size
// 0 and blocks a read until the kernel logs something. The file is opened
// without blocking and its type is taken from the open file itself, so it
// cannot be swapped between the check and the read.
package conffile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// DefaultMaxSize is the size limit of a configuration file where no
// setting gives another: 4 MiB, far more than any real tyk.conf, API
// definition, middleware or template.
const DefaultMaxSize = 4 << 20

// ErrNotRegular is wrapped by Read's error when the path is not a regular
// file (a named pipe, a device, a socket, a directory).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by Read's error when the file is larger than the
// limit.
var ErrTooLarge = errors.New("file too large")

// Read returns the contents of the regular file at path, which must not be
// larger than maxSize bytes (<= 0 means DefaultMaxSize). Every error names
// the file.
func Read(path string, maxSize int64) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	f, err := open(path)
	if err != nil {
		// A socket cannot be opened at all (ENXIO): say what it is.
		if info, statErr := os.Stat(path); statErr == nil && !info.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(info.Mode()))
		}
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, kind(info.Mode()))
	}
	if fsName, ok := pseudoFS(f); ok {
		return nil, fmt.Errorf("%s: %w (a file of the kernel's %s)", path, ErrNotRegular, fsName)
	}
	if info.Size() > maxSize {
		return nil, fmt.Errorf("%s: %w (%d bytes): the limit is %d bytes", path, ErrTooLarge, info.Size(), maxSize)
	}
	// The file may grow after Stat: read one byte past the limit to tell.
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > maxSize {
		return nil, fmt.Errorf("%s: %w (it grew while being read): the limit is %d bytes", path, ErrTooLarge, maxSize)
	}
	return data, nil
}

// kind names what a non-regular file is, for the error.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	default:
		return "mode " + m.String()
	}
}
