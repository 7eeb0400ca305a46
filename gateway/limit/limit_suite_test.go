package limit_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

var _ = BeforeSuite(specs.SendRedisLogsToGinkgo)

func TestLimit(t *testing.T) {
	RegisterFailHandler(Fail)
	// Every spec here pins the limiters' clock to the simulated cluster's
	// and reads its nodes directly; the gateway's own rate-limit and quota
	// specs (specs/ratelimit_test.go) run on the real tier.
	RunSpecs(t, "Limit Suite", Label("ratelimit"), specs.SimulatedOnly("pins the cluster's clock and reads the simulated nodes"))
}
