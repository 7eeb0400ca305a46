package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/conffile"
	"github.com/tollgate/tollgate/gateway/event"
)

// Handler names of event_handlers entries.
const (
	handlerWebhook = "eh_web_hook_handler"
	handlerLog     = "eh_log_handler"
)

// webhookTimeout bounds one webhook delivery, so a slow target holds one
// of its own lane's workers for at most this long. A lane retired by a
// reload also gets this long to deliver what it had queued.
const webhookTimeout = 10 * time.Second

// Each webhook (each eh_web_hook_handler entry) gets a lane of its own: a
// queue of webhookQueueSize events and webhookWorkers deliveries at once.
// A target that hangs fills only its own lane, whose further events are
// dropped and counted (/hello → dropped.webhooks); the bus's workers only
// queue events into lanes and never wait for a target.
const (
	webhookQueueSize = event.DefaultLaneQueueSize
	webhookWorkers   = event.DefaultLaneWorkers
)

// eventHandler handles one event on a bus worker. It must not block: a
// webhook is represented by its lane, which only queues the event.
type eventHandler interface {
	Handle(ctx context.Context, e event.Event) error
}

// logHandler is eh_log_handler: the event goes to the gateway's log.
type logHandler struct{ g *Gateway }

func (h logHandler) Handle(_ context.Context, e event.Event) error {
	h.g.log.Info("event", "type", string(e.Type), "api_id", e.APIID)
	return nil
}

// eventHandlers are the compiled handlers of one event_handlers section.
type eventHandlers struct {
	byName map[event.Name][]eventHandler
	lanes  []*event.Lane    // the webhooks' lanes, retired with the section
	hooks  []*event.Webhook // the webhooks themselves, for their counters
}

// retire lets the section's lanes deliver what they hold, for at most
// webhookTimeout, and stop: its API was replaced or never served.
func (h eventHandlers) retire() {
	for _, l := range h.lanes {
		l.Retire(webhookTimeout)
	}
}

// compileEventHandlers builds the handlers of an event_handlers section,
// starting a lane for each webhook. field names the section in errors and
// warnings.
func (g *Gateway) compileEventHandlers(sec apidef.EventHandlerSection, field string) (eventHandlers, []string, error) {
	var out eventHandlers
	if len(sec.Events) == 0 {
		return out, nil, nil
	}
	out.byName = map[event.Name][]eventHandler{}
	var warnings []string
	fail := func(err error) (eventHandlers, []string, error) {
		out.retire()
		return eventHandlers{}, nil, err
	}
	for name, entries := range sec.Events {
		if !event.Fired(event.Name(name)) {
			warnings = append(warnings, fmt.Sprintf("%s.events.%s: tollgate does not fire this event; its handlers never run", field, name))
		}
		for i, entry := range entries {
			at := fmt.Sprintf("%s.events.%s[%d]", field, name, i)
			switch entry.HandlerName {
			case handlerLog:
				out.byName[event.Name(name)] = append(out.byName[event.Name(name)], logHandler{g})
			case handlerWebhook:
				var conf event.WebhookConfig
				if _, err := apidef.DecodeStrict(entry.HandlerMeta, &conf); err != nil {
					return fail(fmt.Errorf("%s.handler_meta: %w", at, err))
				}
				if conf.Disabled {
					continue
				}
				hook, ws, err := event.NewWebhook(conf, event.WebhookOptions{
					TemplateDir:     g.cfg.TemplateDir(),
					MaxTemplateSize: g.cfg.ScriptSizeLimit(),
					Client:          &http.Client{Transport: g.transport, Timeout: webhookTimeout},
					Store:           g.store.Client,
					Now:             g.now,
					Log:             g.reqLog,
					KeepHeaderCase:  g.cfg.IgnoreCanonicalMIMEHeaderKey,
				})
				if errors.Is(err, conffile.ErrTooLarge) {
					err = fmt.Errorf("%w (max_script_size in tyk.conf)", err)
				}
				if err != nil {
					return fail(fmt.Errorf("%s.handler_meta: %w", at, err))
				}
				for _, w := range ws {
					warnings = append(warnings, at+".handler_meta: "+w)
				}
				lane := g.lanes.Add(hook, event.LaneOptions{
					QueueSize: webhookQueueSize,
					Workers:   webhookWorkers,
					Timeout:   webhookTimeout,
					OnError:   g.eventHandlerFailed,
				})
				out.lanes = append(out.lanes, lane)
				out.hooks = append(out.hooks, hook)
				out.byName[event.Name(name)] = append(out.byName[event.Name(name)], lane)
			default:
				warnings = append(warnings, fmt.Sprintf("%s.handler_name: %q is not implemented; the entry is ignored", at, entry.HandlerName))
			}
		}
	}
	return out, warnings, nil
}

// dispatchEvent runs, on a bus worker, the handlers of the API the event
// is about and those of tyk.conf. Webhooks are only queued on their lanes,
// so one slow target cannot hold the bus's workers.
func (g *Gateway) dispatchEvent(e event.Event) {
	var handlers []eventHandler
	for _, api := range g.routes.Load().apis {
		if api.def.APIID == e.APIID {
			handlers = append(handlers, api.events.byName[e.Type]...)
			break
		}
	}
	handlers = append(handlers, g.globalEvents.byName[e.Type]...)
	for _, h := range handlers {
		err := h.Handle(context.Background(), e)
		switch {
		case errors.Is(err, event.ErrLaneFull):
			g.reqLog.Warn("event dropped: its webhook's queue is full", "type", string(e.Type), "api_id", e.APIID)
		case err != nil:
			g.eventHandlerFailed(e, err)
		}
	}
}

func (g *Gateway) eventHandlerFailed(e event.Event, err error) {
	g.reqLog.Warn("event handler failed", "type", string(e.Type), "api_id", e.APIID, "error", err)
}

// WebhookDeliveries counts what the webhooks' lanes did with the events
// they were given: handled (failures included), dropped (a full lane, or
// left at Shutdown's deadline) and still pending.
func (g *Gateway) WebhookDeliveries() event.LaneStats { return g.lanes.Stats() }
