// Package gateway is tollgate's API gateway as a library. It reads Tyk's
// configuration format (tyk.conf and API definition JSON) and serves it.
//
//	cfg, warnings, err := gateway.LoadConfig("tyk.conf")
//	if err != nil { ... }               // names the file and the line or field
//	for _, w := range warnings { ... }  // settings tollgate does not implement
//	gw, err := gateway.New(cfg, gateway.WithLogger(logger),
//		gateway.WithShutdownLimits(gateway.ShutdownLimits{Flush: 10 * time.Second, Webhooks: 5 * time.Second}))
//	if err != nil { ... }
//	srv, err := gateway.Listen(cfg.ListenAddr(), gw, logger)
//	if err != nil { ... }
//	// ... on SIGTERM:
//	grace, cancel := context.WithTimeout(ctx, 30*time.Second)
//	_ = srv.Shutdown(grace) // stop accepting; finish requests until the grace, then cut them
//	// Flush analytics, deliver webhooks, close Redis, each phase within its
//	// limit (ctx may end the webhooks sooner, never the flush):
//	err = gw.Shutdown(context.Background())
//	errors.Is(err, gateway.ErrBufferedLost) // records did not reach Redis (the log says how many)
//	errors.Is(err, gateway.ErrEventsCut)    // webhooks were cut off
//
// Requests are routed by listen_path, longest first; /hello reports health
// including Redis; /tyk/ is the control API (control.go). Every API's
// requests go through the chain fixed in order.go, whose steps are the
// packages under step/, written against the contract in chain/. Errors the
// gateway produces itself are Tyk-shaped JSON ({"error": "..."}) with a
// machine-readable X-Tollgate-Error header (chain/errors.go).
package gateway
