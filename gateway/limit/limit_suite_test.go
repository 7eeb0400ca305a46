package limit_test

import (
	"log/slog"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

// go-redis logs the failed dials that the Redis-failure specs cause on
// purpose; keep them with the spec's own output.
var _ = BeforeSuite(func() {
	storage.LogTo(slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
})

func TestLimit(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Limit Suite", Label("ratelimit"))
}
