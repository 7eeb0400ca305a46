package gateway

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/gateway/apidef"
	"github.com/tollgate/tollgate/gateway/event"
)

// Handler names of event_handlers entries.
const (
	handlerWebhook = "eh_web_hook_handler"
	handlerLog     = "eh_log_handler"
)

// webhookTimeout bounds one webhook delivery, so a slow target holds a
// bus worker for at most this long.
const webhookTimeout = 10 * time.Second

// eventHandler handles one event on a bus worker.
type eventHandler interface {
	Handle(ctx context.Context, e event.Event) error
}

// logHandler is eh_log_handler: the event goes to the gateway's log.
type logHandler struct{ g *Gateway }

func (h logHandler) Handle(_ context.Context, e event.Event) error {
	h.g.log.Info("event", "type", string(e.Type), "api_id", e.APIID)
	return nil
}

// compileEventHandlers builds the handlers of an event_handlers section.
// field names the section in errors and warnings.
func (g *Gateway) compileEventHandlers(sec apidef.EventHandlerSection, field string) (map[event.Name][]eventHandler, []string, error) {
	if len(sec.Events) == 0 {
		return nil, nil, nil
	}
	out := map[event.Name][]eventHandler{}
	var warnings []string
	for name, entries := range sec.Events {
		if !event.Fired(event.Name(name)) {
			warnings = append(warnings, fmt.Sprintf("%s.events.%s: tollgate does not fire this event; its handlers never run", field, name))
		}
		for i, entry := range entries {
			at := fmt.Sprintf("%s.events.%s[%d]", field, name, i)
			switch entry.HandlerName {
			case handlerLog:
				out[event.Name(name)] = append(out[event.Name(name)], logHandler{g})
			case handlerWebhook:
				var conf event.WebhookConfig
				if _, err := apidef.DecodeStrict(entry.HandlerMeta, &conf); err != nil {
					return nil, nil, fmt.Errorf("%s.handler_meta: %w", at, err)
				}
				if conf.Disabled {
					continue
				}
				hook, ws, err := event.NewWebhook(conf, event.WebhookOptions{
					TemplateDir: g.cfg.TemplateDir(),
					Client:      &http.Client{Transport: g.transport, Timeout: webhookTimeout},
					Store:       g.store.Client,
					Now:         g.now,
					Log:         g.log,
				})
				if err != nil {
					return nil, nil, fmt.Errorf("%s.handler_meta: %w", at, err)
				}
				for _, w := range ws {
					warnings = append(warnings, at+".handler_meta: "+w)
				}
				out[event.Name(name)] = append(out[event.Name(name)], hook)
			default:
				warnings = append(warnings, fmt.Sprintf("%s.handler_name: %q is not implemented; the entry is ignored", at, entry.HandlerName))
			}
		}
	}
	return out, warnings, nil
}

// dispatchEvent runs, on a bus worker, the handlers of the API the event
// is about and those of tyk.conf. Each is bounded by webhookTimeout.
func (g *Gateway) dispatchEvent(e event.Event) {
	var handlers []eventHandler
	for _, api := range g.routes.Load().apis {
		if api.def.APIID == e.APIID {
			handlers = append(handlers, api.events[e.Type]...)
			break
		}
	}
	handlers = append(handlers, g.globalEvents[e.Type]...)
	for _, h := range handlers {
		ctx, cancel := context.WithTimeout(g.eventCtx, webhookTimeout)
		if err := h.Handle(ctx, e); err != nil {
			if g.eventCtx.Err() != nil {
				g.handlersCut.Add(1)
			}
			g.log.Warn("event handler failed", "type", string(e.Type), "api_id", e.APIID, "error", err)
		}
		cancel()
	}
}
