package cluster_test

import (
	"log/slog"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/storage"
	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

// go-redis logs the failed dials that the node-failure specs cause on
// purpose; keep them with the spec's own output.
var _ = BeforeSuite(func() {
	storage.LogTo(slog.New(slog.NewTextHandler(GinkgoWriter, nil)))
})

func TestCluster(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Cluster Suite", Label("cluster"))
}
