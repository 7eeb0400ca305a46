package specs_test

import (
	"net/http"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/specs"
)

var _ = Describe("Loading API definitions from app_path", Label("apidef"), func() {
	var env *specs.Env

	BeforeEach(func() {
		env = specs.NewEnv(specs.WithAPI(keylessAPI("good", "/good/")))
	})

	When("one file is not valid JSON", func() {
		var err error
		BeforeEach(func() {
			env.WriteAPIFile("broken.json", "{\n  \"api_id\": \"broken\",\n  \"proxy\": {\"listen_path\": \"/broken/\",,}\n}")
			err = env.Gateway.Reload()
		})

		It("reports the file, line and column", func() {
			Expect(err).To(MatchError(And(ContainSubstring("broken.json"), ContainSubstring("line 3"), ContainSubstring("column"))))
		})

		It("still serves the other APIs", func() {
			Expect(env.Get("/good/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a field has a value of the wrong type", func() {
		It("reports the file and the field", func() {
			env.WriteAPIFile("typed.json", `{"api_id": "typed", "active": true, "use_keyless": true, "proxy": {"listen_path": "/t/", "target_url": "{{upstream}}", "strip_listen_path": "yes"}}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("typed.json"), ContainSubstring("proxy.strip_listen_path"))))
		})
	})

	When("a required field is missing", func() {
		It("reports the file and the field", func() {
			env.WriteAPIFile("nolisten.json", `{"api_id": "nolisten", "active": true, "use_keyless": true, "proxy": {"target_url": "{{upstream}}"}}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("nolisten.json"), ContainSubstring("proxy.listen_path"))))
		})
	})

	When("target_url is not an absolute http URL", func() {
		It("reports the file and the field", func() {
			env.WriteAPIFile("relative.json", `{"api_id": "relative", "active": true, "use_keyless": true, "proxy": {"listen_path": "/r/", "target_url": "upstream:8080"}}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("relative.json"), ContainSubstring("proxy.target_url"))))
		})
	})

	When("two files use the same api_id", func() {
		It("serves the first by file name and reports the second", func() {
			env.WriteAPIFile("zz-same.json", keylessAPI("good", "/other/"))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("zz-same.json"), ContainSubstring("api_id"), ContainSubstring("good.json"))))
			Expect(env.Get("/other/").StatusCode).To(Equal(http.StatusNotFound))
		})
	})

	When("two files use the same listen_path", func() {
		It("serves the first by file name and reports the second", func() {
			env.WriteAPIFile("zz-path.json", keylessAPI("another", "/good"))
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("zz-path.json"), ContainSubstring("proxy.listen_path"))))
		})
	})

	When("an object names a key twice", func() {
		It("reports the file and the key", func() {
			env.WriteAPIFile("twice.json", `{"api_id": "twice", "api_id": "again"}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("twice.json"), ContainSubstring(`"api_id"`))))
		})
	})

	When("a definition has fields tollgate does not implement", func() {
		It("loads it and logs one warning naming them", func() {
			env.WriteAPIFile("extra.json", `{"api_id": "extra", "active": true, "use_keyless": true, "enable_batch_request_support": true, "proxy": {"listen_path": "/extra/", "target_url": "{{upstream}}", "enable_load_balancing": false}}`)
			Expect(env.Gateway.Reload()).To(Succeed())
			Expect(env.Get("/extra/").StatusCode).To(Equal(http.StatusOK))
			Expect(env.Logs()).To(ContainSubstring("enable_batch_request_support, proxy.enable_load_balancing"))
		})
	})

	When("app_path cannot be read on reload", func() {
		It("keeps serving the APIs it had", func() {
			Expect(os.RemoveAll(env.AppDir)).To(Succeed())
			Expect(env.Gateway.Reload()).To(MatchError(ContainSubstring("app_path")))
			Expect(env.Get("/good/").StatusCode).To(Equal(http.StatusOK))
		})
	})

	When("a version's expires is not a date", func() {
		It("reports the file and the field", func() {
			env.WriteAPIFile("dated.json", `{"api_id": "dated", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/dated/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "expires": "next tuesday"}}}}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("dated.json"), ContainSubstring("version_data.versions.Default.expires"))))
		})
	})

	When("definition.location is not one Tyk knows", func() {
		It("reports the file and the field", func() {
			env.WriteAPIFile("where.json", `{"api_id": "where", "active": true, "use_keyless": true,
  "definition": {"location": "body", "key": "v"},
  "proxy": {"listen_path": "/where/", "target_url": "{{upstream}}"}}`)
			Expect(env.Gateway.Reload()).To(MatchError(And(ContainSubstring("where.json"), ContainSubstring("definition.location"))))
		})
	})

	When("an extended path is not a valid regular expression", func() {
		It("loads the API and warns that the path is matched as literal text", func() {
			env.RegisterAPI(`{"api_id": "literal", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/literal/", "target_url": "{{upstream}}"},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default", "use_extended_paths": true,
    "extended_paths": {"black_list": [{"path": "secret/***", "method_actions": {"GET": {"action": "no_action"}}}]}}}}}`)
			Expect(env.Logs()).To(ContainSubstring(`extended_paths.black_list[0].path: \"secret/***\" is not a valid regular expression`))
		})
	})
})
