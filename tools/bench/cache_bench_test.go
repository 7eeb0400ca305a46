package bench

import (
	"net/http"
	"testing"
)

// cachedKeyless is a keyless API that caches /hit (an hour) and proxies
// everything else, so both benchmarks below run the same chain.
const cachedKeyless = `{"api_id": "c", "active": true, "use_keyless": true,
  "proxy": {"listen_path": "/c/", "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default",
    "use_extended_paths": true, "extended_paths": {"cache": ["^/hit$"]}}}},
  "cache_options": {"enable_cache": true, "cache_timeout": 3600}}`

// BenchmarkCacheHit answers every request from the response cache: one
// Redis GET instead of the upstream round trip.
func BenchmarkCacheHit(b *testing.B) {
	_, url := startGateway(b, cachedKeyless, `{}`)
	resp, err := http.Get(url + "/c/hit")
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	load(b, url+"/c/hit", noHeaders)
}

// BenchmarkCacheProxied sends requests the same API does not cache: the
// proxied path BenchmarkCacheHit is compared with.
func BenchmarkCacheProxied(b *testing.B) {
	_, url := startGateway(b, cachedKeyless, `{}`)
	load(b, url+"/c/pass", noHeaders)
}
