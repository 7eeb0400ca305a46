package conffile_test

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/conffile"
)

var _ = Describe("Reading a configuration file", func() {
	var dir string
	BeforeEach(func() { dir = GinkgoT().TempDir() })

	// write creates a regular file of size bytes in dir.
	write := func(name string, size int) string {
		GinkgoHelper()
		path := filepath.Join(dir, name)
		Expect(os.WriteFile(path, []byte(strings.Repeat("x", size)), 0o600)).To(Succeed())
		return path
	}

	When("the file is a regular file within the limit", func() {
		It("returns its contents", func() {
			Expect(conffile.Read(write("ok.json", 10), 10)).To(Equal([]byte("xxxxxxxxxx")))
		})
	})

	When("the file is a symlink to a regular file", func() {
		It("returns the target's contents, as a ConfigMap's links need", func() {
			link := filepath.Join(dir, "link.json")
			Expect(os.Symlink(write("target", 3), link)).To(Succeed())
			Expect(conffile.Read(link, 0)).To(Equal([]byte("xxx")))
		})
	})

	When("the file is larger than the limit", func() {
		It("is an error naming the file and the limit", func() {
			path := write("big.json", 11)
			_, err := conffile.Read(path, 10)
			Expect(err).To(MatchError(conffile.ErrTooLarge))
			Expect(err).To(MatchError(And(ContainSubstring(path), ContainSubstring("11 bytes"), ContainSubstring("limit is 10 bytes"))))
		})
	})

	When("no limit is given", func() {
		It("applies DefaultMaxSize", func() {
			_, err := conffile.Read(write("big.json", conffile.DefaultMaxSize+1), 0)
			Expect(err).To(MatchError(conffile.ErrTooLarge))
		})
	})

	When("the file is a named pipe no one writes to", func() {
		It("is an error naming the file, at once rather than when a writer comes", func(ctx SpecContext) {
			path := filepath.Join(dir, "fifo.json")
			Expect(syscall.Mkfifo(path, 0o600)).To(Succeed())
			start := time.Now()
			_, err := conffile.Read(path, 0)
			Expect(err).To(MatchError(And(ContainSubstring(path), ContainSubstring("not a regular file (a named pipe)"))))
			Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		}, SpecTimeout(5*time.Second))
	})

	When("the file is a symlink to /dev/zero", func() {
		It("is an error naming the file, before reading a byte of the endless device", func() {
			link := filepath.Join(dir, "zero.json")
			Expect(os.Symlink("/dev/zero", link)).To(Succeed())
			_, err := conffile.Read(link, 0)
			Expect(err).To(MatchError(conffile.ErrNotRegular))
			Expect(err).To(MatchError(And(ContainSubstring(link), ContainSubstring("a character device"))))
		})
	})

	When("the file is a symlink to a file of /proc, which says it is a regular file of size 0", func() {
		// /proc/kmsg is one such file that blocks a read until the kernel
		// logs something: it held a gateway's start, and every reload
		// after it, for ever. /proc/self/status is read here, since any
		// user may open it.
		It("is an error naming the file and the kernel's file system, before reading a byte", func() {
			if runtime.GOOS != "linux" {
				Skip("the kernel's file systems are recognised on Linux")
			}
			link := filepath.Join(dir, "kernel.json")
			Expect(os.Symlink("/proc/self/status", link)).To(Succeed())
			_, err := conffile.Read(link, 0)
			Expect(err).To(MatchError(conffile.ErrNotRegular))
			Expect(err).To(MatchError(And(ContainSubstring(link), ContainSubstring("a file of the kernel's procfs"))))
		})
	})

	When("the path is a directory", func() {
		It("is an error naming it", func() {
			_, err := conffile.Read(dir, 0)
			Expect(err).To(MatchError(And(ContainSubstring(dir), ContainSubstring("a directory"))))
		})
	})

	When("the path is a Unix socket", func() {
		It("is an error naming it", func() {
			path := filepath.Join(dir, "s.json")
			l, err := net.Listen("unix", path)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(l.Close)
			_, err = conffile.Read(path, 0)
			Expect(err).To(MatchError(conffile.ErrNotRegular))
			Expect(err).To(MatchError(And(ContainSubstring(path), ContainSubstring("a socket"))))
		})
	})
})
