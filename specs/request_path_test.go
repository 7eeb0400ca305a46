package specs_test

import (
	"os"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
)

// readmeRequestPath reads the numbered list of the README's "Request
// path" section: each stage's bold name and what its line says about
// keyless APIs and ignored paths.
func readmeRequestPath() []gateway.StepInfo {
	GinkgoHelper()
	data, err := os.ReadFile("../README.md")
	Expect(err).NotTo(HaveOccurred())
	_, section, found := strings.Cut(string(data), "\n## Request path\n")
	Expect(found).To(BeTrue(), `README.md has no "## Request path" section`)
	section, _, _ = strings.Cut(section, "\n#")
	item := regexp.MustCompile(`(?m)^\d+\. \*\*([^*]+)\*\*(.*)$`)
	var stages []gateway.StepInfo
	for _, m := range item.FindAllStringSubmatch(section, -1) {
		stages = append(stages, gateway.StepInfo{
			Name:         m[1],
			SkipsIgnored: strings.Contains(m[2], "skipped for ignored paths"),
			KeyedOnly:    strings.Contains(m[2], "keyed APIs only"),
		})
	}
	return stages
}

var _ = Describe("The request path", func() {
	It("is listed in the README in the order gateway/order.go builds it, with the same steps left out of keyless APIs and skipped for ignored paths", func() {
		Expect(readmeRequestPath()).To(Equal(gateway.RequestPath()))
	})

	It("skips exactly auth, granular access, rate limit and quota for ignored paths", func() {
		var skipped []string
		for _, s := range gateway.RequestPath() {
			if s.SkipsIgnored {
				skipped = append(skipped, s.Name)
			}
		}
		Expect(skipped).To(Equal([]string{"auth", "granular access", "rate limit", "quota"}))
	})
})
