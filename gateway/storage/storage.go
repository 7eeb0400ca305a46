// Package storage builds the gateway's Redis client from tyk.conf's
// storage section: a single node, a Redis Cluster, or, when no host is
// configured, an embedded simulated Redis Cluster started in process.
//
//	store, err := storage.Open(cfg.Storage, logger)
//	if err != nil { ... }
//	defer store.Close()
//	store.Client.Set(ctx, "k", "v", 0)
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/tollgate/tollgate/cluster"
)

// Config is tyk.conf's storage section, with Tyk's field names.
type Config struct {
	// Type is the store kind; only "redis" (the default) exists.
	Type string `json:"type"`
	// Host and Port name one Redis node.
	Host string `json:"host"`
	Port int    `json:"port"`
	// Hosts maps host to port (Tyk's older form). A JSON object can hold a
	// host only once, so two nodes on one host need Addrs.
	Hosts map[string]string `json:"hosts"`
	// Addrs lists nodes as "host:port".
	Addrs []string `json:"addrs"`
	// EnableCluster makes the gateway talk to a Redis Cluster: the nodes
	// listed are seeds from which the topology is discovered.
	EnableCluster bool `json:"enable_cluster"`
	// Username and Password authenticate to Redis (ACL user or requirepass).
	Username string `json:"username"`
	Password string `json:"password"`
	// Database is the database number of a single node. A Redis Cluster
	// has only database 0.
	Database int `json:"database"`
	// MaxIdle is the number of idle connections kept per node. Default 0
	// (go-redis decides).
	MaxIdle int `json:"optimisation_max_idle"`
	// MaxActive caps the connections per node. Default 0 (go-redis's
	// default of 10 per CPU).
	MaxActive int `json:"optimisation_max_active"`
	// Timeout, in seconds, bounds dialling, reads and writes. Default 5.
	Timeout int `json:"timeout"`
	// RequestTimeout (tollgate's own), in seconds, bounds each Redis
	// operation a request makes (session, limits, cache): a store that
	// hangs costs a request at most this long (a 503 for its session).
	// Default 1.
	RequestTimeout float64 `json:"request_timeout"`
}

// RequestBudget is request_timeout with its default.
func (c Config) RequestBudget() time.Duration {
	if c.RequestTimeout <= 0 {
		return time.Second
	}
	return time.Duration(c.RequestTimeout * float64(time.Second))
}

// Validate reports settings that cannot describe a working store, each
// error starting with the field it is about ("port: ...").
func (c Config) Validate() error {
	if c.Type != "" && c.Type != "redis" {
		return fmt.Errorf("type: %q is not supported; use \"redis\"", c.Type)
	}
	if math.IsNaN(c.RequestTimeout) || c.RequestTimeout < 0 || c.RequestTimeout > 60 {
		return fmt.Errorf("request_timeout: %v is not a number of seconds from 0 to 60 (0 for the default, 1)", c.RequestTimeout)
	}
	if c.Timeout < 0 || c.Timeout > 3600 {
		return fmt.Errorf("timeout: %d is not a number of seconds from 0 to 3600 (0 for the default, 5)", c.Timeout)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port: %d is not a TCP port (1 to 65535)", c.Port)
	}
	for host, port := range c.Hosts {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("hosts: port %q of host %q is not a port number", port, host)
		}
	}
	for i, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("addrs[%d]: %q is not host:port", i, a)
		}
	}
	if c.EnableCluster && c.Database != 0 {
		return fmt.Errorf("database: %d, but a Redis Cluster has only database 0", c.Database)
	}
	if n := len(c.addresses()); n > 1 && !c.EnableCluster {
		return fmt.Errorf("enable_cluster: %d nodes are listed but enable_cluster is false: set enable_cluster for a Redis Cluster, or list one node", n)
	}
	return nil
}

// addresses lists the configured nodes: addrs, then hosts (sorted), then
// host/port.
func (c Config) addresses() []string {
	out := slices.Clone(c.Addrs)
	hosts := make([]string, 0, len(c.Hosts))
	for h := range c.Hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		out = append(out, net.JoinHostPort(h, c.Hosts[h]))
	}
	if c.Host != "" {
		port := c.Port
		if port == 0 {
			port = 6379
		}
		out = append(out, net.JoinHostPort(c.Host, strconv.Itoa(port)))
	}
	return out
}

// A node that refuses connections should fail a request in well under a
// second, not after go-redis's default of five dials per attempt: a
// request waiting on a dead node holds its client.
const (
	dialRetries    = 2
	dialRetryPause = 50 * time.Millisecond
)

// Store is an open Redis client and, for the embedded default, the
// simulated cluster behind it.
type Store struct {
	// Client is safe for concurrent use; with enable_cluster it is a
	// *redis.ClusterClient.
	Client   redis.UniversalClient
	embedded *cluster.Cluster
}

// Open builds the client described by cfg. With no node configured it
// starts an embedded simulated Redis Cluster of cluster.DefaultNodes nodes
// and logs that it did. Open does not wait for Redis: a node that is down
// now is reported by Ping (and /hello), and requests retry it later.
func Open(cfg Config, log *slog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("storage.%w", err)
	}
	timeout := time.Duration(cfg.Timeout) * time.Second
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	addrs := cfg.addresses()
	if len(addrs) == 0 {
		c, err := cluster.Start(cluster.DefaultNodes)
		if err != nil {
			return nil, fmt.Errorf("storage: starting the embedded cluster: %w", err)
		}
		log.Warn("no storage host configured: serving from an embedded simulated Redis Cluster; its data lives in memory and is lost on exit",
			"nodes", c.Addrs())
		client := redis.NewClusterClient(&redis.ClusterOptions{
			DialerRetries:            dialRetries,
			DialerRetryTimeout:       dialRetryPause,
			MaintNotificationsConfig: noMaintNotifications(),
			Addrs:                    c.Addrs(),
			DialTimeout:              timeout,
			ReadTimeout:              timeout,
			WriteTimeout:             timeout,
			ContextTimeoutEnabled:    true,
		})
		return &Store{Client: client, embedded: c}, nil
	}
	if cfg.EnableCluster {
		client := redis.NewClusterClient(&redis.ClusterOptions{
			DialerRetries:              dialRetries,
			DialerRetryTimeout:         dialRetryPause,
			MaintNotificationsConfig:   noMaintNotifications(),
			ClusterStateReloadInterval: stateReloadInterval,
			Addrs:                      addrs,
			Username:                   cfg.Username,
			Password:                   cfg.Password,
			DialTimeout:                timeout,
			ReadTimeout:                timeout,
			WriteTimeout:               timeout,
			ContextTimeoutEnabled:      true,
			PoolSize:                   cfg.MaxActive,
			MaxIdleConns:               cfg.MaxIdle,
		})
		client.AddHook(failoverHook{client: client})
		return &Store{Client: client}, nil
	}
	client := redis.NewClient(&redis.Options{
		DialerRetries:            dialRetries,
		DialerRetryTimeout:       dialRetryPause,
		MaintNotificationsConfig: noMaintNotifications(),
		Addr:                     addrs[0],
		Username:                 cfg.Username,
		Password:                 cfg.Password,
		DB:                       cfg.Database,
		DialTimeout:              timeout,
		ReadTimeout:              timeout,
		WriteTimeout:             timeout,
		ContextTimeoutEnabled:    true,
		PoolSize:                 cfg.MaxActive,
		MaxIdleConns:             cfg.MaxIdle,
	})
	return &Store{Client: client}, nil
}

// Embedded is the simulated cluster Open started, or nil.
func (s *Store) Embedded() *cluster.Cluster { return s.embedded }

// String says what the store is, for a startup message: "Redis Cluster
// 10.0.0.1:7000,10.0.0.2:7000", "Redis 10.0.0.1:6379", or the embedded
// simulated cluster and its nodes.
func (s *Store) String() string {
	switch c := s.Client.(type) {
	case *redis.ClusterClient:
		addrs := strings.Join(c.Options().Addrs, ",")
		if s.embedded != nil {
			return "embedded simulated Redis Cluster " + addrs + " (in memory, lost on exit)"
		}
		return "Redis Cluster " + addrs
	case *redis.Client:
		return "Redis " + c.Options().Addr
	}
	return "Redis"
}

// Ping checks every master: for a cluster, each shard must answer.
func (s *Store) Ping(ctx context.Context) error {
	if cc, ok := s.Client.(*redis.ClusterClient); ok {
		return cc.ForEachShard(ctx, func(ctx context.Context, shard *redis.Client) error {
			if err := shard.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("%s: %w", shard.Options().Addr, err)
			}
			return nil
		})
	}
	return s.Client.Ping(ctx).Err()
}

// Close closes the client and stops the embedded cluster.
func (s *Store) Close() error {
	err := s.Client.Close()
	if s.embedded != nil {
		s.embedded.Close()
	}
	if errors.Is(err, redis.ErrClosed) {
		err = nil
	}
	return err
}

// noMaintNotifications turns off go-redis's maintenance notifications, a
// Redis Cloud and Enterprise feature it tries by default. Trying costs
// every node client a handoff queue of five times its pool size, allocated
// up front: with a large optimisation_max_active that is megabytes per
// node, for a feature the Redis Cluster a Tyk gateway runs on does not
// offer.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}
