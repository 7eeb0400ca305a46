package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// healthReport is the body of the health endpoint (/hello), in the shape
// Tyk uses.
type healthReport struct {
	Status      string                 `json:"status"` // "pass" or "fail"
	Description string                 `json:"description"`
	Details     map[string]healthCheck `json:"details"`
	// Dropped counts what the gateway let go rather than hold requests up:
	// events (a full event queue) and analytics records (a full buffer).
	Dropped map[string]uint64 `json:"dropped"`
}

type healthCheck struct {
	Status        string `json:"status"`
	ComponentType string `json:"componentType"`
	Time          string `json:"time"`
	Output        string `json:"output,omitempty"`
}

// healthTimeout bounds the Redis check so /hello answers even when a node
// hangs.
const healthTimeout = 2 * time.Second

// serveHealth answers 200 "pass" when every Redis master answers PING, and
// 503 "fail", with the error, when one does not.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	redisCheck := healthCheck{Status: "pass", ComponentType: "datastore", Time: time.Now().UTC().Format(time.RFC3339)}
	report := healthReport{Status: "pass", Description: "tollgate", Details: map[string]healthCheck{}}
	code := http.StatusOK
	if err := g.store.Ping(ctx); err != nil {
		redisCheck.Status, redisCheck.Output = "fail", err.Error()
		report.Status = "fail"
		code = http.StatusServiceUnavailable
	}
	report.Details["redis"] = redisCheck
	report.Dropped = map[string]uint64{"events": g.events.Dropped(), "analytics": g.AnalyticsDropped()}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(report)
}
