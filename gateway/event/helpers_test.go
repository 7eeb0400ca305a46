package event_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/event"

	"github.com/tollgate/tollgate/specs"
)

// receivedWebhook is one request as a webhook target saw it.
type receivedWebhook struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// webhookSink is a webhook target that records every request and answers
// with its status (204 unless set).
type webhookSink struct {
	URL string

	mu       sync.Mutex
	received []receivedWebhook
	status   int
	location string // sent with status when set
	// arrived, when set, is told of each request and hold, when set, is
	// waited for before answering: a spec can keep a delivery in flight.
	arrived chan<- struct{}
	hold    <-chan struct{}
}

// StartWebhookSink starts a webhook target on 127.0.0.1 that is closed when
// the spec ends.
func StartWebhookSink() *webhookSink {
	GinkgoHelper()
	s := &webhookSink{status: http.StatusNoContent}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	DeferCleanup(srv.Close)
	s.URL = srv.URL + "/hook"
	return s
}

func (s *webhookSink) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.received = append(s.received, receivedWebhook{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
	status, location, arrived, hold := s.status, s.location, s.arrived, s.hold
	s.mu.Unlock()
	if location != "" {
		w.Header().Set("Location", location)
	}
	if arrived != nil {
		arrived <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(status)
}

// Received returns the requests so far.
func (s *webhookSink) Received() []receivedWebhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedWebhook(nil), s.received...)
}

// Last returns the latest request; the spec fails if there is none.
func (s *webhookSink) Last() receivedWebhook {
	GinkgoHelper()
	got := s.Received()
	Expect(got).NotTo(BeEmpty(), "the webhook target received nothing")
	return got[len(got)-1]
}

// AnswerWith makes the sink answer every further request with status.
func (s *webhookSink) AnswerWith(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// RedirectTo makes the sink answer every further request with status and
// a Location of url.
func (s *webhookSink) RedirectTo(status int, url string) {
	s.mu.Lock()
	s.status, s.location = status, url
	s.mu.Unlock()
}

// HoldRequests makes the sink report each request on arrived and answer it
// only once hold is closed (or the client gives up).
func (s *webhookSink) HoldRequests(arrived chan<- struct{}, hold <-chan struct{}) {
	s.mu.Lock()
	s.arrived, s.hold = arrived, hold
	s.mu.Unlock()
}

// StartSlowWebhookTarget starts a target that never answers: each request
// waits until the client gives up.
func StartSlowWebhookTarget() string {
	GinkgoHelper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hanging up, and ends r's context,
		// only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	DeferCleanup(srv.Close)
	return srv.URL + "/hook"
}

// DeadWebhookTarget returns the URL of a port on 127.0.0.1 that nothing
// listens on any more: connections to it are refused.
func DeadWebhookTarget() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return "http://" + addr + "/hook"
}

// NewHTTPClient returns a client with timeout whose idle connections are
// closed when the spec ends.
func NewHTTPClient(timeout time.Duration) *http.Client {
	GinkgoHelper()
	transport := &http.Transport{}
	DeferCleanup(transport.CloseIdleConnections)
	return &http.Client{Timeout: timeout, Transport: transport}
}

// SeedTemplateDir is the seed's tyk.conf template_path, resolved.
func SeedTemplateDir() string {
	GinkgoHelper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "fixtures", "seed", "templates"))
	Expect(err).NotTo(HaveOccurred())
	return dir
}

// WriteTemplate writes a template into a directory of the spec's own and
// returns its absolute path.
func WriteTemplate(text string) string {
	GinkgoHelper()
	path := filepath.Join(GinkgoT().TempDir(), "webhook.json")
	Expect(os.WriteFile(path, []byte(text), 0o600)).To(Succeed())
	return path
}

// SpecLog is a logger that writes to the spec's output.
func SpecLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(GinkgoWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// BuildWebhook builds a webhook and fails the spec on error.
func BuildWebhook(conf event.WebhookConfig, o event.WebhookOptions) *event.Webhook {
	GinkgoHelper()
	if o.Log == nil {
		o.Log = SpecLog()
	}
	w, _, err := event.NewWebhook(conf, o)
	Expect(err).NotTo(HaveOccurred())
	return w
}

// StartCluster returns the node addresses of the spec's Redis Cluster: a
// simulated one, closed when the spec ends (also returned, for its
// clock), or on the real tier the real one, emptied first (and nil).
func StartCluster() ([]string, *cluster.Cluster) {
	GinkgoHelper()
	return specs.StartCluster(cluster.DefaultNodes)
}

// ConnectGateway returns the go-redis client one gateway would use for the
// cluster, closed when the spec ends. The short waits make a failure show
// at once instead of after go-redis's production retries.
func ConnectGateway(addrs []string) *redis.ClusterClient {
	GinkgoHelper()
	return specs.ConnectCluster(addrs...)
}

// ConnectUnreachableStore returns a Redis client whose server is gone.
func ConnectUnreachableStore() *redis.Client {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	client := redis.NewClient(&redis.Options{
		Addr:            addr,
		MaxRetries:      -1,
		DialTimeout:     time.Second,
		DialerRetries:   1,
		DisableIdentity: true,
	})
	DeferCleanup(client.Close)
	return client
}

// WebhookMarkers returns the keys stored on any master, with their TTLs.
func WebhookMarkers(ctx context.Context, client *redis.ClusterClient) map[string]time.Duration {
	GinkgoHelper()
	var mu sync.Mutex
	markers := map[string]time.Duration{}
	Expect(client.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		keys, err := master.Keys(ctx, "*").Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			ttl, err := master.TTL(ctx, k).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			markers[k] = ttl
			mu.Unlock()
		}
		return nil
	})).To(Succeed())
	return markers
}

// BodyOf is the JSON object the KeyExpired template sends for e, a
// KeyExpiredEvent: its event, message, path, origin and key.
func BodyOf(e event.Event) map[string]any {
	meta := e.Meta.(event.KeyFailureMeta)
	return map[string]any{
		"event":   string(e.Type),
		"message": meta.Message,
		"path":    meta.Path,
		"origin":  meta.Origin,
		"key":     meta.Key,
	}
}

// KeyExpiredEvent is the event the gateway fires for an expired key.
func KeyExpiredEvent(key string) event.Event {
	return event.Event{
		Type:      event.KeyExpired,
		APIID:     "security",
		TimeStamp: time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC),
		Meta: event.KeyFailureMeta{
			Message:            "Attempted access from expired key.",
			Path:               "/security/refresh",
			Origin:             "10.0.0.7",
			Key:                key,
			OriginatingRequest: "R0VUIC8gSFRUUC8xLjENCg==",
		},
	}
}
