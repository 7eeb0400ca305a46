package specs_test

import "fmt"

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
