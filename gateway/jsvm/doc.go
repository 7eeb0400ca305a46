// Package jsvm runs Tyk-style JavaScript middleware on otto.
//
//	prog, err := jsvm.Compile(
//		jsvm.Spec{APIID: "api-1", OrgID: "org-1", ConfigData: configData},
//		[]jsvm.Source{{Name: "refreshSecurity", File: path, Code: code}},
//		jsvm.Config{Timeout: 5 * time.Second, Log: logger, Host: host},
//	)
//	if err != nil { ... } // a *jsvm.ScriptError names the file and line
//
//	// per request, on the request's goroutine:
//	res, err := prog.Run(r.Context(), "refreshSecurity", jsvm.Request{
//		Headers: r.Header, Body: body, URL: r.URL.String(), Params: r.URL.Query(),
//		Method: r.Method, RequestURI: r.RequestURI, Scheme: "http",
//	}, sessionJSON)
//	if errors.Is(err, jsvm.ErrTimeout) { ... }
//	// apply res.Request: DeleteHeaders, SetHeaders, Body, URL, DeleteParams,
//	// AddParams, ExtendedParams, ReturnOverrides; write back res.SessionMeta.
//
// Scripts are written as for Tyk: they create a middleware with
// new TykJS.TykMiddleware.NewMiddleware({}), register a callback with
// NewProcessRequest and return ReturnData(request, sessionMeta) or
// ReturnAuthData(request, session). The globals log, rawlog, b64enc, b64dec,
// rawb64enc, rawb64dec, TykGetKeyData, TykSetKeyData, TykMakeHttpRequest and
// TykBatchRequest are available; the key and batch functions go to the
// Config's Host.
//
// Compile runs the wrapper and every script once, in a template VM. A run
// takes an idle VM, or copies the template, and runs on the caller's
// goroutine: no goroutine is started per run. Afterwards the VM's global
// namespace is reset to what it was after Compile (globals a run created
// are deleted, reassigned ones restored) and the VM waits for the next run.
// A run that fails or is interrupted discards its VM instead.
// State inside objects that already existed after Compile is not reset: a
// property a run adds to its middleware object, or to Object.prototype,
// stays for later runs on that VM, so scripts keep per-request state in
// local variables.
//
// A run is interrupted through otto's Interrupt channel when Config.Timeout
// passes or ctx ends. The context given to the Host and to
// TykMakeHttpRequest's client carries the same deadline, so a blocking Go
// call ends with the script.
//
// otto has no memory limit of its own. With Config.Memory, a MemoryBudget
// watches the heap while runs are in flight and, past its limit, stops
// them all the same way (ErrMemoryLimit), scripts loading in Compile
// included; see MemoryBudget.
//
// With an Interrupt channel set, otto calls runtime.Gosched before every
// statement and expression it evaluates, and every JS function call costs
// a scope and an arguments object; creating objects and properties is most
// of the rest. So a run's arguments are made from Go values (build.go),
// ReturnData, ReturnAuthData and JSON.stringify are Go functions with
// otto's results (stringify.go), and no statement of the wrapper runs per
// request.
package jsvm
