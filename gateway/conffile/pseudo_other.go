//go:build !linux

package conffile

import "os"

// pseudoFS reports kernel file systems on Linux only.
func pseudoFS(*os.File) (string, bool) { return "", false }
