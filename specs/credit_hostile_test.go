package specs_test

import (
	"net/http"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/limit"
	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("A busy key's share, under attack", Label("limits", "quota"), func() {
	const busy = `"rate": 1000000, "per": 1, "quota_max": 100000, "quota_renewal_rate": 3600`

	It("costs the key no quota on another gateway when the key changes without a reset (suppress_reset=1)", func(ctx SpecContext) {
		env := specs.NewEnv(specs.WithConfig(`{"secret": "s"}`), specs.WithAPI(keyedAPI("orders", "/orders/")))
		key := env.IssueKey(grantTo("orders", busy))
		other := env.StartGateway()
		served := 0
		for range 64 { // shares of 1, 2, 4, ... 32, then 64: 63 held
			Expect(other.Get("/orders/", "Authorization", key).StatusCode).To(Equal(http.StatusOK))
			served++
		}
		// The operator narrows the key to /a, keeping its counters.
		narrowed := `{"access_rights": {"orders": {"api_id": "orders", "api_name": "orders", "versions": [],
		  "allowed_urls": [{"url": "/a", "methods": ["GET"]}]}}, "org_id": "org1", ` + busy + `}`
		Expect(env.Control(env.Instance, http.MethodPut, "/tyk/keys/"+key+"?suppress_reset=1", narrowed).StatusCode).To(Equal(http.StatusOK))
		Eventually(func() int {
			status := other.Get("/orders/b", "Authorization", key).StatusCode
			if status == http.StatusOK {
				served++
			}
			return status
		}).WithContext(ctx).Should(Equal(http.StatusForbidden))
		Expect(other.Gateway.Shutdown(ctx)).To(Succeed())
		Expect(env.Redis.Get(ctx, limit.QuotaKey(key)).Val()).To(Equal(strconv.Itoa(served)),
			"what the other gateway held goes back to the store")
	}, SpecTimeout(30*time.Second))
})
