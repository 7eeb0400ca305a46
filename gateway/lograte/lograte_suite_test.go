package lograte_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

func TestLograte(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Lograte Suite", Label("limits-hostile"))
}
