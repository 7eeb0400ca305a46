package storage

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// slogPrinter adapts go-redis's internal logger to slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.log.WarnContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// LogTo sends go-redis's own messages (failed dials, pool trouble) to log
// instead of standard error. go-redis has one logger per process, so only
// a program's main (or a test suite) should call this.
func LogTo(log *slog.Logger) {
	redis.SetLogger(slogPrinter{log: log})
}
