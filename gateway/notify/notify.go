// Package notify carries reloads and key changes between the gateways of
// one deployment over Redis pub/sub, signed with node_secret: one owned
// goroutine receives, Close stops it and waits.
//
//	n := notify.New(client, []byte(secret), time.Now, log, handle)
//	_ = n.Publish(ctx, notify.GroupReload, "")
//	_ = n.Close(ctx)
package notify

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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Channel is the Redis pub/sub channel gateways of one
// deployment tell each other on, as Tyk's do.
const Channel = "tyk.cluster.notifications"

// Notification commands (Tyk's names).
const (
	// GroupReload asks every gateway to reload its API definitions
	// (sent by GET /tyk/reload/group).
	GroupReload = "GroupReload"
	// KeySpaceUpdate names a session changed or deleted through a
	// control API, so every gateway drops its cached copy at once.
	KeySpaceUpdate = "KeySpaceUpdateNotification"
)

// Notification is one message on Channel. Command and Payload
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

// Notifier publishes this gateway's notifications and runs the one
// goroutine that receives everyone's. Close stops it and waits.
type Notifier struct {
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
	handled atomic.Uint64
}

// subscribeWait bounds how long New waits for the subscription to be
// confirmed; past it the goroutine keeps trying, and the gateway serves.
const subscribeWait = 2 * time.Second

// New subscribes to Channel and starts the receiving goroutine; handle
// gets every checked notification from another gateway.
func New(client redis.UniversalClient, key []byte, now func() time.Time, log *slog.Logger, handle func(Notification)) *Notifier {
	var id [8]byte
	_, _ = rand.Read(id[:])
	n := &Notifier{
		client: client, key: key, id: hex.EncodeToString(id[:]), now: now, log: log, handle: handle,
		stop: make(chan struct{}), done: make(chan struct{}), seen: map[string]time.Time{},
	}
	n.ps = client.Subscribe(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), subscribeWait)
	defer cancel()
	if err := n.ps.Subscribe(ctx, Channel); err != nil {
		log.Warn("cluster notifications: not subscribed yet, retrying", "channel", Channel, "error", err)
	} else if _, err := n.ps.ReceiveTimeout(ctx, subscribeWait); err != nil {
		log.Warn("cluster notifications: subscription not confirmed yet, retrying", "channel", Channel, "error", err)
	}
	go n.run()
	return n
}

// Publish signs and sends a notification to every gateway, this one
// included (which ignores its own).
func (n *Notifier) Publish(ctx context.Context, command, payload string) error {
	var nonce [16]byte
	_, _ = rand.Read(nonce[:])
	msg := Notification{Command: command, Payload: payload, Time: n.now().Unix(), Nonce: hex.EncodeToString(nonce[:]), From: n.id}
	msg.Sign(n.key)
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return n.client.Publish(ctx, Channel, data).Err()
}

// receiveTimeout is how long the receiver waits before checking the
// connection with a PING.
const receiveTimeout = 30 * time.Second

func (n *Notifier) run() {
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
func (n *Notifier) receive(payload string) {
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
	n.handled.Add(1)
}

func (n *Notifier) check(msg Notification) error {
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

func (n *Notifier) drop(why string, err error) {
	n.refused.Add(1)
	n.log.Warn("cluster notification ignored", "channel", Channel, "reason", why, "error", err)
}

// Close ends the subscription and waits for the receiving goroutine.
func (n *Notifier) Close(ctx context.Context) error {
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
