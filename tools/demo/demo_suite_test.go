package main

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

// Declared first, so its cleanup runs after every other cleanup of a spec.
var _ = BeforeEach(specs.GuardAgainstLeaks)

var _ = BeforeSuite(specs.SendRedisLogsToGinkgo)

func TestDemo(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Demo Suite", Label("demo"))
}
