// Package leaky is a suite that the leak-guard spec runs in a child
// process: one spec leaves a goroutine behind, one stops its goroutine in
// a DeferCleanup. The guard must fail the first and pass the second.
package leaky

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

func TestLeaky(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Leaky Suite")
}

// parkedForever blocks on a channel nobody will send on, like the
// goroutine of Tyk #804.
func parkedForever(ch chan int) { <-ch }

// parkedUntilStopped blocks until its owner closes stop.
func parkedUntilStopped(stop chan struct{}, done chan struct{}) {
	defer close(done)
	<-stop
}

var _ = Describe("goroutines", func() {
	It("leaks one", func() {
		go parkedForever(make(chan int))
	})

	It("stops its own in a cleanup", func() {
		stop, done := make(chan struct{}), make(chan struct{})
		go parkedUntilStopped(stop, done)
		DeferCleanup(func() { close(stop); <-done })
	})
})
