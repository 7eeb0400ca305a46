package specs_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/tollgate/tollgate/specs"
)

// keylessAPI is the smallest API definition tollgate serves: active, no
// key, one version, forwarding listenPath to the recording upstream.
func keylessAPI(apiID, listenPath string) string {
	return fmt.Sprintf(`{
  "api_id": %q,
  "name": %q,
  "active": true,
  "use_keyless": true,
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}`, apiID, apiID, listenPath)
}

// keyedAPI is an API that needs a key in the Authorization header.
func keyedAPI(apiID, listenPath string) string {
	return fmt.Sprintf(`{
  "api_id": %q,
  "name": %q,
  "active": true,
  "use_keyless": false,
  "auth": {"auth_header_name": "Authorization"},
  "proxy": {"listen_path": %q, "target_url": "{{upstream}}", "strip_listen_path": true},
  "version_data": {"not_versioned": true, "versions": {"Default": {"name": "Default"}}}
}`, apiID, apiID, listenPath)
}

// grantTo is a session (JSON) granting access to apiID, with extra fields
// (a JSON object's members, e.g. `"rate": 3, "per": 60`). Its versions
// list is empty: enough for a not_versioned API, none of a versioned one's
// versions (see grantVersion).
func grantTo(apiID string, extra ...string) string {
	fields := ""
	for _, e := range extra {
		fields += ", " + e
	}
	return fmt.Sprintf(`{"access_rights": {%q: {"api_id": %q, "api_name": %q, "versions": []}}, "org_id": "org1"%s}`, apiID, apiID, apiID, fields)
}

// grantVersion is grantTo for one version of a versioned API.
func grantVersion(apiID, version string, extra ...string) string {
	fields := ""
	for _, e := range extra {
		fields += ", " + e
	}
	return fmt.Sprintf(`{"access_rights": {%q: {"api_id": %q, "api_name": %q, "versions": [%q]}}, "org_id": "org1"%s}`, apiID, apiID, apiID, version, fields)
}

// issueExpiredKey issues a key whose expires is a second ahead and moves
// the spec clock past it: the control API drops an expires already past
// when it creates a key, as Tyk does. session builds the session JSON
// around the "expires" member it is given.
func issueExpiredKey(env *specs.Env, session func(expires string) string) string {
	GinkgoHelper()
	key := env.IssueKey(session(fmt.Sprintf(`"expires": %d`, env.Clock.Now().Add(time.Second).Unix())))
	env.Clock.Advance(2 * time.Second)
	return key
}
