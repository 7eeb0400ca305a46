package conffile_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = BeforeEach(specs.GuardAgainstLeaks)

func TestConffile(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Conffile Suite", Label("limits-hostile"))
}
