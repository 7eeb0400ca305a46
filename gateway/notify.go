package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// NotificationChannel is the Redis pub/sub channel gateways of one
// deployment tell each other on, as Tyk's do.
const NotificationChannel = "tyk.cluster.notifications"

// Notification commands (Tyk's names).
const (
	// NoticeGroupReload asks every gateway to reload its API definitions
	// (sent by GET /tyk/reload/group).
	NoticeGroupReload = "GroupReload"
	// NoticeKeySpaceUpdate names a session changed or deleted through a
	// control API, so every gateway drops its cached copy at once.
	NoticeKeySpaceUpdate = "KeySpaceUpdateNotification"
)

// Notification is one message on NotificationChannel. Command and Payload
// are Tyk's; Time, Nonce, From and Signature are tollgate's: the signature
// is an HMAC-SHA256 of the other fields keyed with node_secret (or secret
// when node_secret is empty), so a client of Redis that does not know it
// cannot make gateways act, and a message seen once is not accepted again.
type Notification struct {
	Command   string `json:"command"`
	Payload   string `json:"payload"`
	Time      int64  `json:"time"`
	Nonce     string `json:"nonce"`
	From      string `json:"from"`
	Signature string `json:"signature"`
}

// notificationMaxAge is how far a notification's time may be from the
// receiver's clock; replays within it are caught by their nonce.
const notificationMaxAge = time.Minute

// Sign sets n's signature for key.
func (n *Notification) Sign(key []byte) { n.Signature = n.mac(key) }

func (n *Notification) mac(key []byte) string {
	m := hmac.New(sha256.New, key)
	for _, f := range []string{n.Command, n.Payload, strconv.FormatInt(n.Time, 10), n.Nonce, n.From} {
		// Length-prefixed, so fields cannot be shifted into each other.
		fmt.Fprintf(m, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(m.Sum(nil))
}

// errNotifyRefused is a notification the gateway did not act on.
var errNotifyRefused = errors.New("notification refused")

// notifier publishes this gateway's notifications and runs the one
// goroutine that receives everyone's. Close stops it and waits.
type notifier struct {
	client redis.UniversalClient
	key    []byte
	id     string // this gateway's id, to skip its own messages
	now    func() time.Time
	log    *slog.Logger
	handle func(n Notification)

	ps      *redis.PubSub
	stopped atomic.Bool
	stop    chan struct{}
	done    chan struct{}

	mu   sync.Mutex
	seen map[string]time.Time // nonce → when it may be forgotten

	refused atomic.Uint64
}

// subscribeWait bounds how long New waits for the subscription to be
// confirmed; past it the goroutine keeps trying, and the gateway serves.
const subscribeWait = 2 * time.Second

func newNotifier(client redis.UniversalClient, key []byte, now func() time.Time, log *slog.Logger, handle func(Notification)) *notifier {
	var id [8]byte
	_, _ = rand.Read(id[:])
	n := &notifier{
		client: client, key: key, id: hex.EncodeToString(id[:]), now: now, log: log, handle: handle,
		stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]time.Time{},
	}
	n.ps = client.Subscribe(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), subscribeWait)
	defer cancel()
	if err := n.ps.Subscribe(ctx, NotificationChannel); err != nil {
		log.Warn("cluster notifications: not subscribed yet, retrying", "channel", NotificationChannel, "error", err)
	} else if _, err := n.ps.ReceiveTimeout(ctx, subscribeWait); err != nil {
		log.Warn("cluster notifications: subscription not confirmed yet, retrying", "channel", NotificationChannel, "error", err)
	}
	go n.run()
	return n
}

// Publish signs and sends a notification to every gateway, this one
// included (which ignores its own).
func (n *notifier) Publish(ctx context.Context, command, payload string) error {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	msg := Notification{Command: command, Payload: payload, Time: n.now().Unix(), Nonce: hex.EncodeToString(nonce[:]), From: n.id}
	msg.Sign(n.key)
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return n.client.Publish(ctx, NotificationChannel, data).Err()
}

// receiveTimeout is how long the receiver waits before checking the
// connection with a PING.
const receiveTimeout = 30 * time.Second

func (n *notifier) run() {
	defer close(n.done)
	ctx := context.Background()
	backoff := 50 * time.Millisecond
	for !n.stopped.Load() {
		m, err := n.ps.ReceiveTimeout(ctx, receiveTimeout)
		if n.stopped.Load() {
			return
		}
		if err != nil {
			var netErr interface{ Timeout() bool }
			if errors.As(err, &netErr) && netErr.Timeout() {
				_ = n.ps.Ping(ctx)
				continue
			}
			// go-redis redials on the next receive; wait a little first so
			// a node that is down is not dialled in a tight loop.
			n.log.Debug("cluster notifications: receive failed", "error", err)
			select {
			case <-n.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		if msg, ok := m.(*redis.Message); ok {
			n.receive(msg.Payload)
		}
	}
}

// receive checks one message and hands it on. Its own messages, unsigned
// or wrongly signed ones, stale ones and replays are dropped and counted.
func (n *notifier) receive(payload string) {
	var msg Notification
	if err := json.Unmarshal([]byte(payload), &msg); err != nil {
		n.drop("not a notification", err)
		return
	}
	if msg.From == n.id {
		return
	}
	if err := n.check(msg); err != nil {
		n.drop(err.Error(), nil)
		return
	}
	n.handle(msg)
}

func (n *notifier) check(msg Notification) error {
	if !hmac.Equal([]byte(msg.Signature), []byte(msg.mac(n.key))) {
		return fmt.Errorf("%w: signature does not match node_secret", errNotifyRefused)
	}
	now := n.now()
	sent := time.Unix(msg.Time, 0)
	if sent.Before(now.Add(-notificationMaxAge)) || sent.After(now.Add(notificationMaxAge)) {
		return fmt.Errorf("%w: sent at %s, more than %s from now", errNotifyRefused, sent.UTC().Format(time.RFC3339), notificationMaxAge)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for nonce, until := range n.seen {
		if now.After(until) {
			delete(n.seen, nonce)
		}
	}
	if _, ok := n.seen[msg.Nonce]; ok {
		return fmt.Errorf("%w: already received (a replay)", errNotifyRefused)
	}
	// Remembered for as long as its time is acceptable, so the map holds
	// at most two minutes of messages.
	n.seen[msg.Nonce] = sent.Add(notificationMaxAge)
	return nil
}

func (n *notifier) drop(why string, err error) {
	n.refused.Add(1)
	n.log.Warn("cluster notification ignored", "channel", NotificationChannel, "reason", why, "error", err)
}

// Close ends the subscription and waits for the receiving goroutine.
func (n *notifier) Close(ctx context.Context) error {
	n.stopped.Store(true)
	close(n.stop)
	err := n.ps.Close()
	select {
	case <-n.done:
	case <-ctx.Done():
		return fmt.Errorf("cluster notifications: receiver still running: %w", ctx.Err())
	}
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}

// notificationKey is what notifications are signed with.
func (c *Config) notificationKey() string {
	if c.NodeSecret != "" {
		return c.NodeSecret
	}
	return c.Secret
}

// onNotification acts on a checked notification from another gateway.
func (g *Gateway) onNotification(n Notification) {
	switch n.Command {
	case NoticeGroupReload:
		err := g.Reload()
		var fileErrs *DefinitionErrors
		switch {
		case err == nil:
			g.log.Info("reloaded: asked by another gateway", "from", n.From)
		case errors.As(err, &fileErrs):
			g.log.Warn("reloaded: asked by another gateway; some definitions were left out", "from", n.From, "error", err)
		default:
			g.log.Error("reload asked by another gateway failed; the APIs being served stay", "from", n.From, "error", err)
		}
	case NoticeKeySpaceUpdate:
		g.cache.Forget(n.Payload)
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
	if err := g.notify.Publish(ctx, NoticeKeySpaceUpdate, id); err != nil {
		g.log.Warn("other gateways not told of a key change; their cached copy expires within cached_session_timeout", "error", err)
	}
}

// controlGroupReload serves GET /tyk/reload/group: this gateway reloads,
// then tells every other one to.
func (g *Gateway) controlGroupReload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		controlError(w, http.StatusMethodNotAllowed, CauseControlMethod, "Method not supported: use GET")
		return
	}
	if err := g.Reload(); err != nil {
		var fileErrs *DefinitionErrors
		if !errors.As(err, &fileErrs) {
			controlError(w, http.StatusInternalServerError, CauseControlBadRequest, "Reload failed, the APIs being served stay: "+err.Error())
			return
		}
	}
	if err := g.notify.Publish(r.Context(), NoticeGroupReload, ""); err != nil {
		controlError(w, http.StatusServiceUnavailable, CauseStorageUnavailable, "Reloaded this gateway, but the others could not be told: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, controlReply{Status: "ok"})
}
