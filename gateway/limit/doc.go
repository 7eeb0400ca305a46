// Package limit enforces Tyk-compatible rate limits and quotas whose state
// lives in Redis, so every gateway that shares the store shares the limits:
//
//	window := limit.NewWindow(client, limit.WindowOptions{Transactional: true})
//	d, err := window.Allow(ctx, keyHash, session.Rate, time.Duration(session.Per*float64(time.Second)))
//	switch {
//	case err != nil:
//		// Redis is unreachable: fail open, log the error (it never holds the id).
//	case !d.Allowed:
//		// 429 Rate Limit Exceeded; X-RateLimit-Reset from d.Reset.
//	}
//
//	quota := limit.NewQuota(client, nil)
//	q, err := quota.Consume(ctx, keyHash, session.QuotaMax, time.Duration(session.QuotaRenewalRate)*time.Second)
//	if err == nil && !q.Allowed {
//		// 403 Quota exceeded; q.Renews says when it resets.
//	}
//
// Window is Tyk's sliding log ("Redis rolling rate limiter"): a sorted set
// named rate-limit-<id> holding one member per counted request, scored with
// the request time in nanoseconds. Allow trims, counts, adds and reads the
// oldest entry in one pipelined round trip, inside MULTI/EXEC unless
// WindowOptions.Transactional is false. Unlike Tyk, a refused request is
// taken out of the window again (Tyk #1876), so a client that keeps retrying
// is let through as soon as its earlier, allowed requests leave the window.
// With WindowOptions.Sentinel a refusal also sets rate-limit-<id>.BLOCKED
// for the window's length, and while it exists Allow answers from a single
// PTTL without touching the window.
//
// Quota counts requests in quota-<id> with SET NX (which starts the renewal
// period), INCR and PTTL in one MULTI/EXEC.
//
// Every multi-command operation touches one key, hence one hash slot, so the
// package works unchanged with a redis.Client on a single node and with a
// redis.ClusterClient on a Redis Cluster. It starts no goroutines and keeps
// no state besides the client. Redis errors are returned wrapped, together
// with a zero decision; the caller chooses whether to fail open. Error
// messages never contain the id.
package limit
