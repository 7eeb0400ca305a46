package main

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// Declared first, so its cleanup runs after every other cleanup of a spec.
var _ = BeforeEach(specs.GuardAgainstLeaks)

func TestWrkbench(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Wrkbench Suite", Label("bench"))
}
