package specs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// storedSession reads a key's session as Redis holds it.
func storedSession(env *specs.Env, key string) session.State {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data, err := env.Redis.Get(ctx, session.RedisKey(key)).Bytes()
	Expect(err).NotTo(HaveOccurred())
	var st session.State
	Expect(json.Unmarshal(data, &st)).To(Succeed())
	return st
}

var _ = Describe("Session writes", Label("jsvm", "auth"), func() {
	var env *specs.Env

	When("a post middleware edits the session with TykSetKeyData and returns SessionMeta (Tyk's session_editor sample)", func() {
		var key string
		const initialExpires = 1_900_000_000
		BeforeEach(func() {
			mw := middleware("editor", `var key = request.Headers["X-Key"][0];
var s = JSON.parse(TykGetKeyData(key, "js"));
s.expires = s.expires + 1000;
s.meta_data = {"edited": "by TykSetKeyData"};
TykSetKeyData(key, JSON.stringify(s));
return editor.ReturnData(request, {"seen": "yes"});`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "editor", "path": "`+mw+`", "require_session": true}]}`)))
			key = env.IssueKey(grantTo("js", fmt.Sprintf(`"expires": %d`, initialExpires)))
			Expect(env.Get("/js/", "x-key", key).StatusCode).To(Equal(http.StatusOK))
		})

		// Before: the request's own session, read before TykSetKeyData,
		// was written back over it after the chain.
		It("keeps the expiry TykSetKeyData stored", func() {
			Expect(storedSession(env, key).Expires).To(BeEquivalentTo(initialExpires + 1000))
		})

		It("keeps the meta_data TykSetKeyData stored and adds what SessionMeta changed", func() {
			Expect(storedSession(env, key).MetaData).To(Equal(map[string]any{"edited": "by TykSetKeyData", "seen": "yes"}))
		})
	})

	When("two gateways' requests for one key each add their own meta_data member at the same time", func() {
		It("loses neither change", func(ctx SpecContext) {
			mw := middleware("member", `var m = session.meta_data || {};
m[request.Headers["X-Member"][0]] = "set";
return member.ReturnData(request, m);`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "member", "path": "`+mw+`", "require_session": true}]}`)))
			two := env.StartGateway()
			key := env.IssueKey(grantTo("js"))
			const each = 12
			var wg sync.WaitGroup
			for g, inst := range []*specs.Instance{env.Instance, two} {
				wg.Go(func() {
					defer GinkgoRecover()
					for i := range each {
						resp := inst.Get("/js/", "x-key", key, "X-Member", fmt.Sprintf("gw%d-%d", g, i))
						Expect(resp.StatusCode).To(Equal(http.StatusOK))
					}
				})
			}
			wg.Wait()
			Expect(storedSession(env, key).MetaData).To(HaveLen(2 * each))
		}, SpecTimeout(30*time.Second))
	})

	When("a middleware returns the SessionMeta the session already has", func() {
		It("does not write the session", func(ctx SpecContext) {
			mw := middleware("same", `return same.ReturnData(request, session.meta_data);`)
			env = specs.NewEnv(specs.WithConfig(jsvmOn), specs.WithAPI(jsAPI(`{"post": [{"name": "same", "path": "`+mw+`", "require_session": true}]}`)))
			key := env.IssueKey(grantTo("js", `"meta_data": {"a": "b"}`))
			before := storedSession(env, key).LastUpdated
			Expect(env.Redis.Del(ctx, session.RedisKey(key)).Err()).To(Succeed())
			// The gateway still has the session cached; a write would
			// bring the deleted key back.
			Expect(env.Get("/js/", "x-key", key).StatusCode).To(Equal(http.StatusOK))
			Expect(env.Redis.Exists(ctx, session.RedisKey(key)).Val()).To(BeZero(), "the session was written (last_updated was %s)", before)
		}, SpecTimeout(10*time.Second))
	})
})
