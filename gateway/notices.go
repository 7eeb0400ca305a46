package gateway

import (
	"context"

	"github.com/tollgate/tollgate/gateway/notify"
)

// onNotification acts on a checked notification from another gateway.
func (g *Gateway) onNotification(n notify.Notification) {
	switch n.Command {
	case notify.GroupReload:
		err := g.Reload()
		switch outcomeOf(err) {
		case reloadedAll:
			g.log.Info("reloaded: asked by another gateway", "from", n.From)
		case reloadedPartly:
			g.log.Warn("reloaded: asked by another gateway; some definitions were left out", "from", n.From, "error", err)
		case reloadFailed:
			g.log.Error("reload asked by another gateway failed; the APIs being served stay", "from", n.From, "error", err)
		}
	case notify.KeySpaceUpdate:
		// What this gateway holds of the key's limits goes first: a request
		// that sees the changed session must not be served from it.
		g.limiters.chosen.Forget(n.Payload)
		g.sessions.cache.Forget(n.Payload)
	default:
		g.log.Debug("cluster notification not handled", "command", n.Command)
	}
}

// keyChanged tells the other gateways to drop their cached copy of the
// session id. A failure only delays them (their cache expires on its own
// within cached_session_timeout), so it is logged, not returned.
func (g *Gateway) keyChanged(ctx context.Context, id string) {
	if g.notify == nil {
		return
	}
	if err := g.notify.Publish(ctx, notify.KeySpaceUpdate, id); err != nil {
		g.log.Warn("other gateways not told of a key change; their cached copy expires within cached_session_timeout", "error", err)
	}
}
