package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// stateReloadInterval bounds how long a ClusterClient trusts its slot map.
// go-redis re-reads the map on MOVED, but a master that died answers
// nothing at all, so without this the client would keep dialling it for a
// minute (go-redis's default) after its replica had been promoted.
const stateReloadInterval = 5 * time.Second

// failoverHook makes a ClusterClient re-read the slot map as soon as a
// node stops answering, so requests reach a promoted replica within the
// cluster's failover time rather than stateReloadInterval. go-redis runs
// at most one reload at a time (and no more than one per 200 ms).
type failoverHook struct {
	client *redis.ClusterClient
}

var _ redis.Hook = failoverHook{}

func (h failoverHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h failoverHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(err)
		return err
	}
}

func (h failoverHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(err)
		return err
	}
}

func (h failoverHook) check(err error) {
	if nodeUnreachable(err) {
		h.client.ReloadState(context.Background())
	}
}

// nodeUnreachable tells a dead or unreachable node (refused, reset,
// timed out, closed) from a command error Redis answered with.
func nodeUnreachable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
