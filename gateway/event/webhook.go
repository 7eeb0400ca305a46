package event

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/gateway/conffile"
)

// UserAgent is the User-Agent of every webhook request.
const UserAgent = "tollgate-webhook"

// WebhookCachePrefix prefixes the Redis keys that mark a webhook as sent
// within its event_timeout (Tyk's prefix, so both read the same keys).
const WebhookCachePrefix = "webhook.cache."

// DefaultWebhookTimeout bounds a webhook request when WebhookOptions.Client
// is nil.
const DefaultWebhookTimeout = 10 * time.Second

// ErrWebhookStatus is wrapped by Handle's error when the target answered
// with a status outside 2xx.
var ErrWebhookStatus = errors.New("webhook target answered with a non-2xx status")

// ErrWebhookRedirect is wrapped by Handle's error when the target answered
// with a redirect. Redirects are not followed: a POST would be replayed as
// a GET to wherever the target points, possibly a port or host the
// operator never configured, and counted as delivered.
var ErrWebhookRedirect = errors.New("webhook target answered with a redirect, which is not followed")

// tykTimeStamp is how Tyk formats an event's TimeStamp for templates
// (time.Time.String of a local time).
const tykTimeStamp = "2006-01-02 15:04:05.999999999 -0700 MST"

// WebhookConfig is the handler_meta of an "eh_web_hook_handler" entry in an
// API definition's event_handlers, with Tyk's field names.
type WebhookConfig struct {
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"` // Handle does nothing
	// Method is GET, PUT, POST, DELETE or PATCH, in any case. Anything else,
	// including empty, becomes GET with a warning, as in Tyk.
	Method string `json:"method"`
	// TargetPath is the absolute http or https URL the webhook is sent to.
	TargetPath string `json:"target_path"`
	// TemplatePath is the body template: absolute, or relative to
	// WebhookOptions.TemplateDir. Empty, or a file that cannot be read or
	// parsed (with a warning naming it), means the default template, as
	// in Tyk: default_webhook.json in TemplateDir, else Tyk's own, built
	// in (DefaultTemplate). While the Content-Type is JSON
	// (the default), every value the template inserts is JSON-escaped; see
	// webhookFuncs.
	TemplatePath string `json:"template_path"`
	// HeaderMap holds extra request headers; it may replace the default
	// Content-Type (application/json) but not the User-Agent.
	HeaderMap map[string]string `json:"header_map"`
	// EventTimeout, in seconds, is how long an identical webhook (same
	// method, target and body) is not sent again. 0, the default, sends
	// every webhook; Tyk instead never sends an identical webhook again.
	EventTimeout int64 `json:"event_timeout"`
}

// WebhookOptions are the dependencies of a Webhook.
type WebhookOptions struct {
	// TemplateDir is tyk.conf's template_path, already resolved.
	TemplateDir string
	// MaxTemplateSize bounds the template file, in bytes (tyk.conf's
	// max_script_size); <= 0 means conffile.DefaultMaxSize. Only a regular
	// file is read: a named pipe or a device is an error naming it.
	MaxTemplateSize int64
	// Client sends the requests. It must have a Timeout, since Handle runs
	// on one of its lane's few workers. Its CheckRedirect is replaced: a
	// webhook never follows a redirect. Default: DefaultWebhookTimeout on
	// http.DefaultTransport.
	Client *http.Client
	// Store records which webhooks were sent for EventTimeout. Default nil:
	// no deduplication.
	Store redis.UniversalClient
	// Now stamps events that carry no TimeStamp. Default time.Now.
	Now func() time.Time
	// Log receives one line per delivery. Default: discarded.
	Log *slog.Logger
	// KeepHeaderCase sends header_map's names as written (tyk.conf's
	// ignore_canonical_mime_header_key); Content-Type, Host and User-Agent,
	// which the webhook reads itself, are matched canonically still.
	KeepHeaderCase bool
}

// WebhookStats counts what a Webhook did with the events it handled.
type WebhookStats struct {
	Sent       uint64 // the target answered 2xx
	Duplicates uint64 // not sent: an identical webhook was sent within EventTimeout
	Failed     uint64 // non-2xx answer (redirects included) or transport error
}

// Webhook renders events with a template and sends them to a URL, as Tyk's
// WebHookHandler does. Handle is safe for concurrent use and starts no
// goroutines: it runs on its caller's, normally a worker of its own Lane.
type Webhook struct {
	name     string
	disabled bool
	method   string
	target   string
	logged   string // target without query or credentials, for logs
	host     string // Host from header_map, which Go reads from Request.Host
	headers  http.Header
	tmpl     *template.Template
	ttl      time.Duration
	client   *http.Client
	store    redis.UniversalClient
	now      func() time.Time
	log      *slog.Logger

	sent, duplicates, failed atomic.Uint64
}

// webhookData is what a template sees: .Type, .TimeStamp and .Meta, as in
// Tyk's EventMessage. For a KeyExpired event .Meta is a KeyFailureMeta.
type webhookData struct {
	Type      string
	TimeStamp string
	Meta      any
}

// webhookFuncs are available to every template.
//
// Values inserted into a JSON body are escaped: while the webhook's
// Content-Type is JSON (application/json, the default, or any +json type),
// the output of every {{...}} action is escaped as the inside of a JSON
// string, so "{{.Meta.Path}}" stays one string whatever the path holds (a
// path like `x","event":"KeyCreated` cannot add a field). Normal values come
// out exactly as before. Two ways out:
//   - {{json .X}} writes .X as a whole JSON value, quotes included;
//   - {{raw .X}} (or {{.X | raw}}) writes .X as it is, for a template that
//     builds JSON from trusted text. raw must be the action's last call.
//
// With another Content-Type set in header_map the template is plain
// text/template and inserts values as they are.
//
// Tyk parses templates with html/template instead, which turns `"` into
// &#34;, `&` into &amp;, `<` into &lt; and so on: the target receives those
// entities in its strings, and a backslash or a newline still breaks the
// JSON. tollgate's target decodes exactly the text of the value.
var webhookFuncs = template.FuncMap{
	"json":                   jsonValue,
	"raw":                    rawValue,
	"as_rfc3339":             asRFC3339,
	"as_rfc3339_from_string": asRFC3339,
	escapeFunc:               escapeJSONString,
}

func jsonValue(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// rawValue marks an action whose output is not escaped.
func rawValue(v any) any { return v }

// asRFC3339 accepts a time.Time or a TimeStamp string as templates see it.
func asRFC3339(v any) (string, error) {
	switch t := v.(type) {
	case time.Time:
		return t.Format(time.RFC3339), nil
	case string:
		parsed, err := time.Parse(tykTimeStamp, t)
		if err != nil {
			return "", fmt.Errorf("as_rfc3339: %w", err)
		}
		return parsed.Format(time.RFC3339), nil
	default:
		return "", fmt.Errorf("as_rfc3339: want a time or a timestamp string, got %T", v)
	}
}

// DefaultTemplate is Tyk's templates/default_webhook.json: a body per
// event type, for KeyExpired and the other key events {"event", "message",
// "path", "origin", "key"}. A webhook uses it when its template_path is
// empty or cannot be loaded and TemplateDir has no default_webhook.json.
//
//go:embed default_webhook.json
var DefaultTemplate string

// defaultTemplateName is the default template's file name in TemplateDir.
const defaultTemplateName = "default_webhook.json"

// loadTemplate parses conf's template, or the default one as Tyk's
// WebHookHandler.Init picks it: a template_path that is empty, or whose
// file cannot be read or parsed (a warning names it), gives the default.
// The default is default_webhook.json in dir, as Tyk reads it; where that
// file is missing Tyk fails the webhook, and the built-in copy is used
// instead. A default_webhook.json that is there but does not parse is an
// error, as in Tyk.
func loadTemplate(conf WebhookConfig, dir string, maxSize int64) (*template.Template, []string, error) {
	var warnings []string
	if conf.TemplatePath != "" {
		file := conf.TemplatePath
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		tmpl, err := parseTemplateFile(file, maxSize)
		if err == nil {
			return tmpl, nil, nil
		}
		if hostileFile(err) {
			return nil, nil, fmt.Errorf("template_path %q: %w", conf.TemplatePath, err)
		}
		warnings = append(warnings, fmt.Sprintf("webhook %q: template_path %q: %v; using the default template", conf.Name, conf.TemplatePath, err))
	}
	if dir != "" {
		file := filepath.Join(dir, defaultTemplateName)
		tmpl, err := parseTemplateFile(file, maxSize)
		switch {
		case err == nil:
			return tmpl, warnings, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, warnings, fmt.Errorf("the default template: %w", err)
		}
	}
	tmpl, err := template.New(defaultTemplateName).Funcs(webhookFuncs).Parse(DefaultTemplate)
	return tmpl, warnings, err
}

// hostileFile reports a template file that is there but must not be read:
// not a regular file (a named pipe, a device) or larger than the limit.
// Unlike a missing or broken template, which falls back to the default as
// in Tyk, it fails the load: it would hang or fill memory otherwise, and
// the operator should hear of it.
func hostileFile(err error) bool {
	return errors.Is(err, conffile.ErrNotRegular) || errors.Is(err, conffile.ErrTooLarge)
}

// parseTemplateFile reads (see conffile.Read) and parses a template file;
// errors name it.
func parseTemplateFile(file string, maxSize int64) (*template.Template, error) {
	src, err := conffile.Read(file, maxSize)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(filepath.Base(file)).Funcs(webhookFuncs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	return tmpl, nil
}

// NewWebhook validates conf and parses its template. The warnings describe
// settings it replaced with a default.
func NewWebhook(conf WebhookConfig, o WebhookOptions) (*Webhook, []string, error) {
	var warnings []string
	fail := func(format string, args ...any) (*Webhook, []string, error) {
		return nil, warnings, fmt.Errorf("webhook %q: "+format, append([]any{conf.Name}, args...)...)
	}

	method := strings.ToUpper(conf.Method)
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch:
	default:
		warnings = append(warnings, fmt.Sprintf(
			"webhook %q: method %q is not one of GET, PUT, POST, DELETE or PATCH; using GET", conf.Name, conf.Method))
		method = http.MethodGet
	}

	target, err := url.ParseRequestURI(conf.TargetPath)
	if err != nil {
		return fail("target_path: %w", err)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return fail("target_path %q is not an absolute http or https URL", conf.TargetPath)
	}

	tmpl, ws, err := loadTemplate(conf, o.TemplateDir, o.MaxTemplateSize)
	warnings = append(warnings, ws...)
	if err != nil {
		return fail("%w", err)
	}

	if conf.EventTimeout < 0 {
		warnings = append(warnings, fmt.Sprintf(
			"webhook %q: event_timeout %d is negative; sending every webhook", conf.Name, conf.EventTimeout))
	}

	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultWebhookTimeout}
	}
	if client.Timeout <= 0 {
		return fail("the HTTP client has no Timeout: a hung target would hold an event worker")
	}
	noRedirects := *client
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	w := &Webhook{
		name:     conf.Name,
		disabled: conf.Disabled,
		method:   method,
		target:   target.String(),
		logged:   (&url.URL{Scheme: target.Scheme, Host: target.Host, Path: target.Path}).String(),
		headers:  http.Header{"Content-Type": {"application/json"}},
		tmpl:     tmpl,
		client:   &noRedirects,
		store:    o.Store,
		now:      o.Now,
		log:      o.Log,
	}
	if conf.EventTimeout > 0 {
		w.ttl = time.Duration(conf.EventTimeout) * time.Second
	}
	for k, v := range conf.HeaderMap {
		switch canonical := http.CanonicalHeaderKey(k); canonical {
		case "Host":
			w.host = v
		case "User-Agent":
			warnings = append(warnings, fmt.Sprintf(
				"webhook %q: header_map User-Agent is ignored; webhooks are sent as %s", conf.Name, UserAgent))
		default:
			if o.KeepHeaderCase && canonical != "Content-Type" {
				w.headers[k] = []string{v}
			} else {
				w.headers.Set(k, v)
			}
		}
	}
	w.headers.Set("User-Agent", UserAgent)
	if isJSON(w.headers.Get("Content-Type")) {
		escapeActions(tmpl)
	}
	if w.now == nil {
		w.now = time.Now
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	return w, warnings, nil
}

// Handle renders e, drops it if an identical webhook was sent within
// EventTimeout, and otherwise sends it under ctx. It returns why the webhook
// was not delivered; a dropped duplicate is not an error.
func (w *Webhook) Handle(ctx context.Context, e Event) error {
	if w.disabled {
		return nil
	}
	ts := e.TimeStamp
	if ts.IsZero() {
		ts = w.now()
	}
	var body bytes.Buffer
	data := webhookData{Type: string(e.Type), TimeStamp: ts.Local().String(), Meta: e.Meta}
	if err := w.tmpl.Execute(&body, data); err != nil {
		return fmt.Errorf("webhook %q: rendering %s for %s: %w", w.name, w.tmpl.Name(), e.Type, err)
	}
	log := w.log.With("webhook", w.name, "target", w.logged, "event", string(e.Type), "api_id", e.APIID)

	if w.ttl > 0 && w.store != nil {
		// Claiming before sending, atomically, lets exactly one gateway of
		// several send a webhook; Tyk checks, sends, then marks, so all of
		// them may send. A failed delivery keeps its claim, as in Tyk: a dead
		// target is not hammered by every repeat of the event.
		key := WebhookCachePrefix + w.checksum(body.Bytes())
		claimed, err := w.store.SetNX(ctx, key, "1", w.ttl).Result()
		switch {
		case err != nil:
			// A lost dedupe is better than a lost webhook: send anyway.
			log.Warn("webhook dedupe unavailable, sending anyway", "error", err)
		case !claimed:
			w.duplicates.Add(1)
			log.Debug("webhook already sent within event_timeout, dropped")
			return nil
		}
	}

	req, err := http.NewRequestWithContext(ctx, w.method, w.target, &body)
	if err != nil {
		return fmt.Errorf("webhook %q: building request: %w", w.name, err)
	}
	req.Header = w.headers.Clone()
	if w.host != "" {
		req.Host = w.host
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.failed.Add(1)
		log.Warn("webhook request failed", "error", err)
		return fmt.Errorf("webhook %q: sending %s: %w", w.name, e.Type, err)
	}
	// Read a little of the body so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		w.failed.Add(1)
		location := w.redirectTarget(resp)
		log.Warn("webhook target redirected; redirects are not followed", "status", resp.StatusCode, "location", location)
		return fmt.Errorf("webhook %q: sending %s: %w: %d to %q", w.name, e.Type, ErrWebhookRedirect, resp.StatusCode, location)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		w.failed.Add(1)
		log.Warn("webhook target refused", "status", resp.StatusCode)
		return fmt.Errorf("webhook %q: sending %s: %w: %d", w.name, e.Type, ErrWebhookStatus, resp.StatusCode)
	}
	w.sent.Add(1)
	log.Debug("webhook sent", "status", resp.StatusCode)
	return nil
}

// redirectTarget is where a redirect pointed, resolved against the target,
// without credentials or query (as the target itself is logged).
func (w *Webhook) redirectTarget(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: loc.Scheme, Host: loc.Host, Path: loc.Path}).String()
}

// checksum identifies a webhook by what is sent: method, target and body.
func (w *Webhook) checksum(body []byte) string {
	h := sha256.New()
	h.Write([]byte(w.method + "\n" + w.target + "\n"))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Stats returns the counters so far.
func (w *Webhook) Stats() WebhookStats {
	return WebhookStats{
		Sent:       w.sent.Load(),
		Duplicates: w.duplicates.Load(),
		Failed:     w.failed.Load(),
	}
}
