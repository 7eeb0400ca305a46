package apidef

// CacheOptions is the definition's cache_options. JSON names are Tyk's.
type CacheOptions struct {
	// EnableCache turns the response cache on.
	EnableCache bool `json:"enable_cache"`
	// CacheTimeout is how long an entry lives, in seconds. Default 60.
	CacheTimeout int64 `json:"cache_timeout"`
	// CacheAllSafeRequests caches every GET, HEAD and OPTIONS request;
	// otherwise only the paths in a version's extended_paths.cache.
	CacheAllSafeRequests bool `json:"cache_all_safe_requests"`
	// CacheResponseCodes are the upstream statuses that are cached.
	// Default: 200 only.
	CacheResponseCodes []int `json:"cache_response_codes"`
	// CacheByHeaders are request headers whose values are part of the
	// entry key: requests differing in them get separate entries.
	CacheByHeaders []string `json:"cache_by_headers"`
	// EnableUpstreamCacheControl lets the upstream decide: a response is
	// cached only if it carries x-tyk-cache-action-set, for the seconds in
	// x-tyk-cache-action-set-ttl when present.
	EnableUpstreamCacheControl bool `json:"enable_upstream_cache_control"`
	// CacheControlTTLHeader names the upstream header with the TTL instead
	// of x-tyk-cache-action-set-ttl.
	CacheControlTTLHeader string `json:"cache_control_ttl_header"`
}

// CORSConfig is an API definition's "CORS" section, with Tyk's field names.
// The CORS step hands its values to github.com/rs/cors as Tyk does, so browsers see
// the same headers from tollgate as from Tyk.
type CORSConfig struct {
	// Enable turns CORS handling on. Default false: no CORS headers, and
	// preflights go through the chain like any other request.
	Enable bool `json:"enable"`
	// AllowedOrigins may contain "*" (any origin) or one "*" inside an
	// origin ("https://*.example.com"). Default (empty): any origin.
	AllowedOrigins []string `json:"allowed_origins"`
	// AllowedMethods are matched case-sensitively. Default (empty): GET,
	// POST, HEAD.
	AllowedMethods []string `json:"allowed_methods"`
	// AllowedHeaders a preflight may ask for; "*" allows any. Default
	// (empty): Accept, Content-Type, X-Requested-With.
	AllowedHeaders []string `json:"allowed_headers"`
	// ExposedHeaders are listed in Access-Control-Expose-Headers. Default:
	// none.
	ExposedHeaders []string `json:"exposed_headers"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true.
	// Default false.
	AllowCredentials bool `json:"allow_credentials"`
	// MaxAge is Access-Control-Max-Age in seconds. Default 0: not sent.
	MaxAge int `json:"max_age"`
	// OptionsPassthrough forwards preflights through the rest of the
	// chain (auth included) to the upstream instead of answering them 204.
	// Default false.
	OptionsPassthrough bool `json:"options_passthrough"`
	// Debug logs each CORS decision at debug level. Default false.
	Debug bool `json:"debug"`
}

// AnalyticsConfig is tyk.conf's analytics_config.
type AnalyticsConfig struct {
	// IgnoredIPs are clients whose requests are not recorded.
	IgnoredIPs []string `json:"ignored_ips"`
	// RecordsBufferSize bounds the records waiting to be written; when it
	// is full, further records are dropped and counted. Default 10,000.
	RecordsBufferSize int `json:"records_buffer_size"`
	// FlushInterval is how often, in seconds, buffered records are written
	// to Redis in one batch. Default 1.
	FlushInterval float64 `json:"flush_interval"`
}
