package session_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate/tollgate/cluster"
	"github.com/tollgate/tollgate/gateway/session"
	"github.com/tollgate/tollgate/specs"
)

// Env is one spec's Redis: a three-node cluster of miniredis nodes (the
// real cluster on the real tier) and a ClusterClient on it.
type Env struct {
	// Cluster is nil on the real tier.
	Cluster *cluster.Cluster
	Client  *redis.ClusterClient
}

// NewEnv starts the cluster and the client, both stopped when the spec ends.
func NewEnv() *Env {
	GinkgoHelper()
	addrs, sim := specs.StartCluster(3)
	return &Env{Cluster: sim, Client: specs.ConnectCluster(addrs...)}
}

// NewStore returns a Store on the spec's cluster.
func (e *Env) NewStore(opts session.StoreOptions) *session.Store {
	GinkgoHelper()
	Expect(opts.Validate()).To(Succeed())
	return session.NewStore(e.Client, opts)
}

// StoreAsTyk writes a session at the Redis key given literally, the bytes
// Tyk would have written; its alias says where it was stored, so a spec
// can tell which copy was found.
func (e *Env) StoreAsTyk(redisKey string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	data := fmt.Sprintf(`{"org_id":%q,"alias":%q,"rate":10,"per":1,"quota_max":-1,"access_rights":{}}`, orgID, redisKey)
	Expect(e.Client.Set(ctx, redisKey, data, 0).Err()).To(Succeed())
}

// KillOwner kills the node that stores redisKey and restarts it when the
// spec ends.
func (e *Env) KillOwner(redisKey string) *cluster.Node {
	GinkgoHelper()
	node := e.Cluster.NodeForKey(redisKey)
	node.Kill()
	DeferCleanup(node.Restart)
	return node
}

// FoundAt is what Find returned, for one assertion on all of it.
type FoundAt struct {
	Alias string
	ID    string
}

// FindKey finds key for orgID and reports which stored copy it found.
func FindKey(ctx context.Context, store *session.Store, org, key string) (FoundAt, error) {
	st, id, err := store.Find(ctx, org, key)
	if err != nil {
		return FoundAt{}, err
	}
	return FoundAt{Alias: st.Alias, ID: id}, nil
}
