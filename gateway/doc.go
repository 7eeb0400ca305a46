// Package gateway is tollgate's API gateway as a library. It reads Tyk's
// configuration format (tyk.conf and API definition JSON) and serves it.
//
//	cfg, warnings, err := gateway.LoadConfig("tyk.conf")
//	if err != nil { ... }               // names the file and the line or field
//	for _, w := range warnings { ... }  // settings tollgate does not implement
//	gw, err := gateway.New(cfg, gateway.WithLogger(logger))
//	if err != nil { ... }
//	srv, err := gateway.Listen(cfg.ListenAddr(), gw, logger)
//	if err != nil { ... }
//	// ... on SIGTERM:
//	_ = srv.Shutdown(ctx) // finish requests in flight
//	_ = gw.Shutdown(ctx)  // close Redis (and the embedded cluster)
//
// Requests are routed by listen_path, longest first; /hello reports health
// including Redis; /tyk/ is the control API (control.go). Every API's
// requests go through the chain fixed in order.go, whose steps are the
// packages under step/, written against the contract in chain/. Errors the
// gateway produces itself are Tyk-shaped JSON ({"error": "..."}) with a
// machine-readable X-Tollgate-Error header (chain/errors.go).
package gateway
