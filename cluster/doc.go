// Package cluster runs a simulated Redis Cluster made of miniredis nodes,
// which an unmodified go-redis ClusterClient discovers and uses like a real
// one:
//
//	c, err := cluster.Start(cluster.DefaultNodes)
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()[:1]})
//	defer rdb.Close()
//	err = rdb.Set(ctx, "{user1}.name", "ann", time.Hour).Err()
//	owner := c.NodeForKey("{user1}.name") // the node that stores it
//	owner.Kill()                          // its slots now fail with CLUSTERDOWN
//	err = owner.Restart()                 // back on its port, data intact
//
// Each node answers CLUSTER SLOTS, NODES, SHARDS, INFO, MYID and KEYSLOT with
// the shared topology, adds cluster_enabled:1 to INFO, and routes every keyed
// command by its keys' hash slots: MOVED to the owner, CROSSSLOT when the
// keys span slots (inside MULTI, EXEC fails with EXECABORT), CLUSTERDOWN when
// the owner is down. PUBLISH reaches the subscribers of every node (its
// reply counts this node's, as Redis's does). Specs
// drive failures and time with Node.Kill, Node.Restart, Cluster.MoveSlot,
// Cluster.SetTime and Cluster.FastForward; the gateway starts one as its
// embedded store, where keys expire with the wall clock.
//
// Where the simulation knowingly differs from Redis Cluster: there are no
// replicas and no failover; a node's death is noticed at once; a slot whose
// owner is down answers "CLUSTERDOWN Hash slot not served" where Redis would
// still redirect to the dead owner; MoveSlot is atomic (no ASK redirects);
// PUBLISH queued in MULTI or issued by a script reaches only the local node's
// subscribers; CLUSTER commands and redirects are answered before miniredis
// checks AUTH.
package cluster
