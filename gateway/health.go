package gateway

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/tollgate/tollgate/gateway/chain"
)

// healthReport is the body of the health endpoint (/hello), in the shape
// Tyk uses.
type healthReport struct {
	Status      string                 `json:"status"` // "pass" or "fail"
	Description string                 `json:"description"`
	Details     map[string]healthCheck `json:"details"`
	// Dropped counts what the gateway let go rather than hold requests up:
	// events (a full event queue), webhooks (a full queue of one webhook,
	// e.g. its target hangs) and analytics records (a full buffer). Only
	// for callers with the control API secret.
	Dropped map[string]uint64 `json:"dropped,omitempty"`
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

// healthFresh is how long a Redis check answers /hello. Checking a
// cluster re-reads its slot map (go-redis keeps each map for a minute), so
// a probe on every request of a busy load balancer would hold memory and
// load Redis; probes in between get the last answer.
const healthFresh = time.Second

// healthProbe runs one Redis check at a time and remembers its answer.
type healthProbe struct {
	mu  sync.Mutex
	at  time.Time // when the last check ended (monotonic)
	err error
}

// redisHealth returns the answer of a check that ended less than
// healthFresh ago, or checks now. Concurrent probes wait for the check in
// flight. The check does not end with the probing request, so a caller
// that hangs up cannot leave a "context canceled" answer for the others.
func (g *Gateway) redisHealth(ctx context.Context) error {
	g.health.mu.Lock()
	defer g.health.mu.Unlock()
	if !g.health.at.IsZero() && time.Since(g.health.at) < healthFresh {
		return g.health.err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	defer cancel()
	g.health.err = g.store.Ping(ctx)
	g.health.at = time.Now()
	return g.health.err
}

// serveHealth answers 200 "pass" when every Redis master answered PING,
// and 503 "fail" when one did not (checked at most once every
// healthFresh). Anyone gets the status of each component; only a caller
// with the control API secret (X-Tyk-Authorization) gets why one failed,
// which names Redis addresses, and what the gateway dropped.
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	redisCheck := healthCheck{Status: "pass", ComponentType: "datastore", Time: time.Now().UTC().Format(time.RFC3339)}
	report := healthReport{Status: "pass", Description: "tollgate", Details: map[string]healthCheck{}}
	code := http.StatusOK
	trusted := g.hasSecret(r)
	if err := g.redisHealth(r.Context()); err != nil {
		redisCheck.Status = "fail"
		if trusted {
			redisCheck.Output = err.Error()
		}
		report.Status = "fail"
		code = http.StatusServiceUnavailable
	}
	report.Details["redis"] = redisCheck
	if trusted {
		report.Dropped = map[string]uint64{
			"events":    g.events.Dropped(),
			"webhooks":  g.lanes.Stats().Dropped,
			"analytics": g.AnalyticsDropped(),
		}
	}
	chain.WriteJSON(w, code, report)
}
