package gateway

import (
	"errors"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/chain"
	"github.com/tollgate/tollgate/gateway/step/auth"
	"github.com/tollgate/tollgate/gateway/step/cache"
	"github.com/tollgate/tollgate/gateway/step/cors"
	"github.com/tollgate/tollgate/gateway/step/granular"
	"github.com/tollgate/tollgate/gateway/step/quota"
	"github.com/tollgate/tollgate/gateway/step/ratelimit"
	"github.com/tollgate/tollgate/gateway/step/version"
)

// order is the request chain of every API, in order, and the one place
// that fixes it. The README's "Request path" repeats it; a spec checks that
// the two agree.
//
//	CORS              preflights answered before anything else; CORS
//	                  headers on every response, errors included
//	version           resolve the version (header, url-param or url),
//	                  refuse missing, unknown or expired versions; apply
//	                  extended_paths (or the legacy paths): black_list and
//	                  white_list refuse, ignored marks the request as
//	                  needing no key, a reply action answers
//	JS pre            custom_middleware.pre, with an empty session
//	auth              read the key (header, param or cookie), load its
//	                  session, refuse missing, unknown, inactive or expired
//	                  keys and keys without access to this API version;
//	                  on an API with custom_plugin_auth_enabled (or
//	                  enable_coprocess_auth), its JS auth_check instead,
//	                  as Tyk puts it in the auth token's place: it refuses
//	                  or returns the request's session, which the same
//	                  checks and the rows below then apply to
//	JS post_key_auth  custom_middleware.post_key_auth
//	granular access   a key whose access rights list allowed_urls may
//	                  call only those paths and methods
//	rate limit        the key's rate limiter in Redis (GCRA by default),
//	                  which counts the quota in the same round trip
//	quota             requests per renewal period per key in Redis;
//	                  refuses from the rate limit's count when it made one
//	JS post           custom_middleware.post
//	cache             a cached response answers here; a miss is stored
//	                  after the proxy
//
// After the chain (see afterChain): the meta_data members JS changed are
// written, once, onto the session as stored then, so that writes of other
// requests, TykSetKeyData and the control API are not overwritten (see
// Gateway.writeSession); then the request goes to the version's upstream.
//
// A row marked skipIgnored does not run for paths the version step marked
// ignored (extended_paths.ignored); keyedOnly rows are not built for
// keyless APIs. A new step is one package under gateway/step/, one row
// here and its fields in gateway/apidef.
var order = []row{
	{name: "CORS", build: buildCORS},
	{name: "version", build: buildVersion},
	{name: "JS pre", build: buildJS(apidef.HookPre)},
	{name: "auth", build: buildAuth, keyedOnly: true, skipIgnored: true},
	{name: "JS post_key_auth", build: buildJS(apidef.HookPostKeyAuth)},
	{name: "granular access", build: buildGranular, keyedOnly: true, skipIgnored: true},
	{name: "rate limit", build: buildRateLimit, keyedOnly: true, skipIgnored: true},
	{name: "quota", build: buildQuota, keyedOnly: true, skipIgnored: true},
	{name: "JS post", build: buildJS(apidef.HookPost)},
	{name: "cache", build: buildCache},
}

// afterChain names what happens to a request every step let through, in
// order (see api.serve).
var afterChain = []string{"session write", "proxy"}

// row is one step of the chain: how to build it for an API.
type row struct {
	name string
	// build returns the API's steps for this row, none when the API does
	// not use it; warnings go to b.warn.
	build       func(b *apiBuild) ([]chain.Step, error)
	keyedOnly   bool
	skipIgnored bool
}

// StepInfo describes one stage of the request path, for documentation.
type StepInfo struct {
	Name string
	// SkipsIgnored: the stage does not run for extended_paths.ignored.
	SkipsIgnored bool
	// KeyedOnly: the stage is left out of keyless APIs.
	KeyedOnly bool
}

// RequestPath lists the stages every API's requests go through, in order:
// the chain's steps, then the session write and the proxy.
func RequestPath() []StepInfo {
	out := make([]StepInfo, 0, len(order)+len(afterChain))
	for _, r := range order {
		out = append(out, StepInfo{Name: r.name, SkipsIgnored: r.skipIgnored, KeyedOnly: r.keyedOnly})
	}
	for _, name := range afterChain {
		out = append(out, StepInfo{Name: name})
	}
	return out
}

// buildChain builds an API's steps from the table.
func (b *apiBuild) buildChain() ([]chain.Step, error) {
	var steps []chain.Step
	for _, r := range order {
		if r.keyedOnly && b.def.UseKeylessAccess {
			continue
		}
		built, err := r.build(b)
		if err != nil {
			return nil, err
		}
		for _, s := range built {
			if r.skipIgnored {
				s = unlessIgnored{s}
			}
			steps = append(steps, s)
		}
	}
	return steps, nil
}

// unlessIgnored runs its step except for ignored paths.
type unlessIgnored struct{ chain.Step }

func (s unlessIgnored) Serve(c *chain.Call) bool {
	return c.Ignored || s.Step.Serve(c)
}

// one is a builder's answer for a step that may be absent.
func one(s chain.Step, warnings []string, err error, b *apiBuild) ([]chain.Step, error) {
	if err != nil {
		return nil, err
	}
	b.warn(warnings...)
	if s == nil {
		return nil, nil
	}
	return []chain.Step{s}, nil
}

func buildCORS(b *apiBuild) ([]chain.Step, error) {
	s, ws, err := cors.New(&b.def.CORS, b.log)
	return one(s, ws, err, b)
}

func buildVersion(b *apiBuild) ([]chain.Step, error) {
	m := version.Matching{PathMatching: b.g.cfg.HTTPServerOptions.PathMatching(), IgnoreCase: b.g.cfg.IgnoreEndpointCase}
	// The log reaches the upstream proxy, whose 502/504 warnings repeat
	// with every request while an upstream is down.
	s, ws, err := version.New(b.def, m, b.g.transport, b.g.reqLog)
	return one(s, ws, err, b)
}

func buildJS(hook string) func(b *apiBuild) ([]chain.Step, error) {
	return func(b *apiBuild) ([]chain.Step, error) {
		set, err := b.jsMiddleware()
		if err != nil {
			return nil, err
		}
		return set.Steps(hook), nil
	}
}

func buildAuth(b *apiBuild) ([]chain.Step, error) {
	if b.def.CustomAuth() {
		set, err := b.jsMiddleware()
		if err != nil {
			return nil, err
		}
		if s := set.AuthStep(b.g.publisher()); s != nil {
			if b.def.UseStandardAuth {
				// Tyk runs both and keeps one session by
				// base_identity_provided_by; tollgate keeps the one rule.
				return nil, errors.New("use_standard_auth: an API authenticates with its custom_middleware.auth_check or with the auth token, not both; turn one off")
			}
			return []chain.Step{s}, nil
		}
		// auth_check disabled: the auth token, as in Tyk.
	} else if cm := b.def.CustomMiddleware.AuthCheck; cm.Name != "" && !cm.Disabled {
		b.warn("custom_middleware.auth_check: not run without custom_plugin_auth_enabled (or enable_coprocess_auth); the API uses the auth token")
	}
	return []chain.Step{auth.New(b.def.Auth, auth.Options{
		Sessions:        b.g.sessions,
		Events:          b.g.publisher(),
		AllowMasterKeys: b.g.cfg.AllowMasterKeys,
		Log:             b.g.reqLog,
	})}, nil
}

func buildGranular(b *apiBuild) ([]chain.Step, error) {
	return []chain.Step{granular.New(b.g.cfg.HTTPServerOptions.PathMatching(), b.log)}, nil
}

func buildRateLimit(b *apiBuild) ([]chain.Step, error) {
	return []chain.Step{ratelimit.New(b.g.limiters.of(b.def), b.g.publisher(), b.g.reqLog, !b.g.cfg.QuotaHeaders())}, nil
}

func buildQuota(b *apiBuild) ([]chain.Step, error) {
	return []chain.Step{quota.New(b.g.quota, b.g.publisher(), b.g.reqLog, b.g.cfg.QuotaHeaders())}, nil
}

func buildCache(b *apiBuild) ([]chain.Step, error) {
	s, ws, err := cache.New(b.def, cache.RedisStore{Client: b.g.store.Client}, b.g.metrics.cacheCounters(b.def.APIID), b.g.reqLog)
	return one(s, ws, err, b)
}
