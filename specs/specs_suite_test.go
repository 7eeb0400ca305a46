package specs_test

import (
	"log/slog"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/specs"
)

// Declared first, so its cleanup runs after every other cleanup of a spec.
var _ = BeforeEach(specs.GuardAgainstLeaks)

// go-redis logs failed dials (which the node-failure specs cause on
// purpose) to standard error; keep them with the spec's own output.
var _ = BeforeSuite(func() {
	storage.LogTo(slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
})

func TestSpecs(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Tollgate Suite")
}
