package gateway

// Stats counts what a gateway holds now. None of it may grow with the
// number of requests, reloads, key changes or notifications: the
// steady-state specs read it between runs of an operation.
type Stats struct {
	// APIs is the number of APIs being served.
	APIs int
	// EventSubscribers counts the functions subscribed to the event bus.
	EventSubscribers int
	// EventsDelivered and EventsDropped are the event bus's counters.
	EventsDelivered, EventsDropped uint64
	// SessionCacheEntries is the size of the local session cache.
	SessionCacheEntries int
	// JSVMs counts the JS VMs kept by the APIs being served (idle or
	// running), summed over those APIs.
	JSVMs int
	// NotificationsHandled and NotificationsRefused count cluster
	// notifications from other gateways acted on and dropped;
	// NotificationNonces is how many nonces are remembered to refuse
	// replays. All zero when notifications are off.
	NotificationsHandled, NotificationsRefused uint64
	NotificationNonces                         int
}

// Stats returns the gateway's counters.
func (g *Gateway) Stats() Stats {
	s := Stats{
		EventSubscribers:    g.events.Subscribers(),
		EventsDelivered:     g.events.Delivered(),
		EventsDropped:       g.events.Dropped(),
		SessionCacheEntries: g.sessions.cache.Len(),
	}
	if rt := g.routes.Load(); rt != nil {
		s.APIs = len(rt.apis)
		for _, a := range rt.apis {
			s.JSVMs += a.js.LiveVMs()
		}
	}
	if g.notify != nil {
		ns := g.notify.Stats()
		s.NotificationsHandled, s.NotificationsRefused, s.NotificationNonces = ns.Handled, ns.Refused, ns.Nonces
	}
	return s
}
