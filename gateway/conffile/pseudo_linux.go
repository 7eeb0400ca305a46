package conffile

import (
	"os"
	"syscall"
)

// pseudoFilesystems are the kernel's file systems whose "regular" files
// are views of kernel state: they report a size of 0, and some (/proc/kmsg)
// block a read until the kernel has something to say.
var pseudoFilesystems = map[int64]string{
	0x9fa0:     "procfs",
	0x62656572: "sysfs",
	0x64626720: "debugfs",
	0x74726163: "tracefs",
}

// pseudoFS names the kernel file system f is on, if it is one of
// pseudoFilesystems.
func pseudoFS(f *os.File) (string, bool) {
	// Through SyscallConn, not Fd, which would put f in blocking mode.
	conn, err := f.SyscallConn()
	if err != nil {
		return "", false
	}
	var st syscall.Statfs_t
	var statErr error
	if err := conn.Control(func(fd uintptr) { statErr = syscall.Fstatfs(int(fd), &st) }); err != nil || statErr != nil {
		return "", false
	}
	name, ok := pseudoFilesystems[int64(st.Type)]
	return name, ok
}
