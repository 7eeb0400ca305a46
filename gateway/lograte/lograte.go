// Package lograte keeps a warning that can repeat with every request (Redis
// down, a dead webhook target) from flooding the log: one line per cause per
// interval, and the next line of that cause says how many were suppressed.
//
//	log := slog.New(lograte.NewHandler(base.Handler(), lograte.Options{}))
//	log.Warn("quota not applied: store unavailable", "api_id", id, "error", err)
//	// ... the same warning for the same API within 10 s is counted, not written;
//	// the first one after that carries suppressed=<count>.
//
// A cause is the message and the record's api_id (from the record or from
// Logger.With), nothing else: keys, paths and errors vary per request and
// would defeat the limit. The causes remembered are bounded (Options.MaxCauses);
// past that, new causes share one.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval  = 10 * time.Second
	DefaultMaxCauses = 256
)

// SuppressedKey names the attribute that counts the lines of a cause left
// out since its previous line.
const SuppressedKey = "suppressed"

// Options tune a Handler.
type Options struct {
	// Interval is how long after a line of a cause the next one waits.
	// Default DefaultInterval.
	Interval time.Duration
	// MaxCauses bounds the causes remembered. Default DefaultMaxCauses.
	MaxCauses int
	// Level is the lowest level limited; records below it pass. Default
	// slog.LevelWarn.
	Level slog.Leveler
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler passes records to another handler, at most one per cause per
// interval for records at Options.Level or above.
type Handler struct {
	next    slog.Handler
	limiter *limiter
	level   slog.Leveler
	apiID   string // from WithAttrs, before any group
	grouped bool   // a WithGroup was applied: later attrs are not top-level
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler limits what reaches next.
func NewHandler(next slog.Handler, o Options) *Handler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxCauses <= 0 {
		o.MaxCauses = DefaultMaxCauses
	}
	if o.Level == nil {
		o.Level = slog.LevelWarn
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{
		next:  next,
		level: o.Level,
		limiter: &limiter{
			interval: o.Interval,
			max:      o.MaxCauses,
			now:      o.Now,
			causes:   map[string]*cause{},
		},
	}
}

// Enabled reports whether next handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle passes r on, unless its cause already had a line within the
// interval; then r is only counted.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.level.Level() {
		return h.next.Handle(ctx, r)
	}
	apiID := h.apiID
	if !h.grouped {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "api_id" {
				apiID = a.Value.String()
				return false
			}
			return true
		})
	}
	ok, suppressed := h.limiter.allow(r.Message + "\x00" + apiID)
	if !ok {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Uint64(SuppressedKey, suppressed))
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs remembers an api_id among attrs, so the records of a
// logger.With("api_id", ...) are limited per API.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.grouped {
		for _, a := range attrs {
			if a.Key == "api_id" {
				c.apiID = a.Value.String()
			}
		}
	}
	return &c
}

// WithGroup opens a group in next.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.grouped = true
	return &c
}

// limiter is shared by a Handler and those derived from it.
type limiter struct {
	interval time.Duration
	max      int
	now      func() time.Time

	mu     sync.RWMutex // guards causes
	causes map[string]*cause
	// overflow stands for every cause that found the map full.
	overflow cause
}

// cause is one message (and API): when its next line may be written, and
// what was left out since its last.
type cause struct {
	next       atomic.Int64 // unix nanoseconds
	suppressed atomic.Uint64
}

// allow reports whether a line of key may be written now and, if so, how
// many were suppressed before it.
func (l *limiter) allow(key string) (bool, uint64) {
	now := l.now().UnixNano()
	c := l.cause(key, now)
	for {
		next := c.next.Load()
		if now < next {
			c.suppressed.Add(1)
			return false, 0
		}
		if c.next.CompareAndSwap(next, now+int64(l.interval)) {
			return true, c.suppressed.Swap(0)
		}
	}
}

func (l *limiter) cause(key string, now int64) *cause {
	l.mu.RLock()
	c, ok := l.causes[key]
	l.mu.RUnlock()
	if ok {
		return c
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c, ok := l.causes[key]; ok {
		return c
	}
	if len(l.causes) >= l.max {
		// Forget causes whose interval is over and that have nothing to
		// report: their next line would be written anyway.
		for k, c := range l.causes {
			if c.next.Load() <= now && c.suppressed.Load() == 0 {
				delete(l.causes, k)
			}
		}
		if len(l.causes) >= l.max {
			return &l.overflow
		}
	}
	c = &cause{}
	l.causes[key] = c
	return c
}
