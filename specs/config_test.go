package specs_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/tollgate/tollgate/gateway"
)

// seedPath is a file of the reported production setup in fixtures/seed.
func seedPath(parts ...string) string {
	return filepath.Join(append([]string{"..", "fixtures", "seed"}, parts...)...)
}

// writeConf writes a tyk.conf into a temporary folder and returns its path.
func writeConf(content string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), "tyk.conf")
	Expect(os.WriteFile(path, []byte(content), 0o600)).To(Succeed())
	return path
}

var _ = Describe("Loading tyk.conf", Label("config"), func() {
	When("the file is the seed's tyk.conf, whose storage.hosts names each host twice", func() {
		var err error
		BeforeEach(func() {
			_, _, err = gateway.LoadConfig(seedPath("tyk.conf"))
		})

		It("is refused, naming the file, storage.hosts and the duplicate host", func() {
			Expect(err).To(MatchError(And(
				ContainSubstring("tyk.conf"),
				ContainSubstring("storage.hosts"),
				ContainSubstring(`"api1.local"`),
			)))
		})

		It("suggests storage.addrs, which can hold every node", func() {
			Expect(err).To(MatchError(ContainSubstring("storage.addrs")))
		})
	})

	When("the seed's nodes are listed in storage.addrs instead", func() {
		var (
			cfg      *gateway.Config
			warnings gateway.Warnings
		)
		BeforeEach(func() {
			seed, err := os.ReadFile(seedPath("tyk.conf"))
			Expect(err).NotTo(HaveOccurred())
			hostsStart := strings.Index(string(seed), `"hosts": {`)
			hostsEnd := strings.Index(string(seed)[hostsStart:], "}") + hostsStart + 1
			repaired := string(seed[:hostsStart]) +
				`"addrs": ["api1.local:6379", "api2.local:6379", "api3.local:6379", "api1.local:6479", "api2.local:6479", "api3.local:6479"]` +
				string(seed[hostsEnd:])
			var loadErr error
			cfg, warnings, loadErr = gateway.LoadConfig(writeConf(repaired))
			Expect(loadErr).NotTo(HaveOccurred())
		})

		It("keeps all six nodes", func() {
			Expect(cfg.Storage.Addrs).To(HaveLen(6))
		})

		It("keeps the values tollgate implements", func() {
			Expect(cfg.ListenPort).To(Equal(8080))
			Expect(cfg.Storage.EnableCluster).To(BeTrue())
			Expect(cfg.Storage.MaxActive).To(Equal(4000))
		})

		It("lists the settings tollgate does not implement in one warning", func() {
			Expect(warnings).To(HaveLen(1))
			Expect(warnings[0]).To(And(
				ContainSubstring("not implemented"),
				ContainSubstring("policies"),
				ContainSubstring("slave_options"),
				ContainSubstring("Monitor"),
			))
		})

		It("resolves app_path against the folder tyk.conf is in", func() {
			Expect(filepath.IsAbs(cfg.AppDir())).To(BeTrue())
			Expect(filepath.Base(cfg.AppDir())).To(Equal("apps"))
		})
	})

	When("the file is not valid JSON", func() {
		It("is refused, naming the file, line and column", func() {
			_, _, err := gateway.LoadConfig(writeConf("{\n  \"listen_port\": 8080,\n  \"secret\" \"x\"\n}"))
			Expect(err).To(MatchError(And(ContainSubstring("tyk.conf"), ContainSubstring("line 3"), ContainSubstring("column"))))
		})
	})

	When("a setting has a value of the wrong type", func() {
		It("is refused, naming the setting", func() {
			_, _, err := gateway.LoadConfig(writeConf(`{"storage": {"enable_cluster": "yes"}}`))
			Expect(err).To(MatchError(ContainSubstring("storage.enable_cluster")))
		})
	})

	When("any object names a key twice", func() {
		It("is refused, naming the key and where it is", func() {
			_, _, err := gateway.LoadConfig(writeConf(`{"listen_port": 8080, "listen_port": 9090}`))
			Expect(err).To(MatchError(And(ContainSubstring(`"listen_port"`), ContainSubstring("more than once"))))
		})
	})

	When("several nodes are listed without enable_cluster", func() {
		It("is refused, saying which setting is missing", func() {
			_, _, err := gateway.LoadConfig(writeConf(`{"storage": {"addrs": ["127.0.0.1:6379", "127.0.0.1:6380"]}}`))
			Expect(err).To(MatchError(ContainSubstring("enable_cluster")))
		})
	})

	When("the file does not exist", func() {
		It("is refused, naming the path", func() {
			_, _, err := gateway.LoadConfig(filepath.Join(GinkgoT().TempDir(), "missing.conf"))
			Expect(err).To(MatchError(ContainSubstring("missing.conf")))
		})
	})

	When("hash_keys is on and new keys hash with Tyk's 32-bit murmur3 (hash_key_function unset)", func() {
		It("warns that guessed keys collide, naming hash_key_function and the function to choose", func() {
			_, warnings, err := gateway.ParseConfig([]byte(`{"hash_keys": true}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(warnings).To(ContainElement(And(ContainSubstring("hash_key_function"), ContainSubstring("sha256"), ContainSubstring("32-bit"))))
		})
	})

	When("hash_key_function names a function Tyk does not have", func() {
		It("is refused, naming the setting", func() {
			_, _, err := gateway.ParseConfig([]byte(`{"hash_keys": true, "hash_key_function": "md5"}`))
			Expect(err).To(MatchError(ContainSubstring("hash_key_function")))
		})
	})
})

var _ = Describe("tyk.conf values out of range", Label("config"), func() {
	It("refuses listen_port 99999, naming listen_port", func() {
		_, _, err := gatewayParseConfig(`{"listen_port": 99999}`)
		Expect(err).To(MatchError(ContainSubstring("listen_port")))
	})

	It("refuses a limits_credit_percent below 0 or above 10, naming limits_credit_percent", func() {
		for _, v := range []string{"-1", "10.5", "100"} {
			_, _, err := gatewayParseConfig(`{"limits_credit_percent": ` + v + `}`)
			Expect(err).To(MatchError(ContainSubstring("limits_credit_percent: " + v + " is not between 0 and 10")))
		}
		for _, v := range []string{"0", "0.5", "10"} {
			_, _, err := gatewayParseConfig(`{"limits_credit_percent": ` + v + `}`)
			Expect(err).NotTo(HaveOccurred())
		}
	})
})

// gatewayParseConfig parses a tyk.conf given as text.
func gatewayParseConfig(conf string) (*gateway.Config, gateway.Warnings, error) {
	return gateway.ParseConfig([]byte(conf))
}
