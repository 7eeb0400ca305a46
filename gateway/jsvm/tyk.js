// The TykJS namespace that Tyk-style middleware scripts build on.
//
//   var mw = new TykJS.TykMiddleware.NewMiddleware({});
//   mw.NewProcessRequest(function (request, session, config) {
//       request.SetHeaders["X-Seen"] = "yes";
//       return mw.ReturnData(request, session.meta_data);
//   });
//
// The gateway does what mw.DoProcessRequest(requestJSON, sessionJSON,
// configJSON) does, but from Go (vm.call in jsvm.go), and reads the object
// ProcessRequest returns; DoProcessRequest stays for scripts that call it.
//
// What runs per request is kept to few AST nodes: with an Interrupt channel
// set, otto yields the goroutine (runtime.Gosched) before evaluating every
// statement and every expression, and that is a large part of what a
// request pays for.
var TykJS = (function () {
    // Captured once, so that a script replacing JSON.parse or log while it
    // handles a request cannot break the wrapper.
    var parse = JSON.parse;
    var say = log;

    function decode(v) {
        return typeof v === "string" ? (v === "" ? {} : parse(v)) : (v || {});
    }

    function withDefaults(r) {
        if (!r.Headers) { r.Headers = {}; }
        if (!r.SetHeaders) { r.SetHeaders = {}; }
        if (!r.DeleteHeaders) { r.DeleteHeaders = []; }
        if (r.Body === undefined || r.Body === null) { r.Body = ""; }
        if (!r.Params) { r.Params = {}; }
        if (!r.AddParams) { r.AddParams = {}; }
        if (!r.ExtendedParams) { r.ExtendedParams = {}; }
        if (!r.DeleteParams) { r.DeleteParams = []; }
        if (!r.ReturnOverrides) {
            r.ReturnOverrides = {
                ResponseCode: 0, ResponseError: "", ResponseBody: "", ResponseHeaders: {}, OverrideError: false
            };
        }
        if (!r.IgnoreBody) { r.IgnoreBody = false; }
        return r;
    }

    function noRequest() {
        say("Middleware didn't return request object!");
        return undefined;
    }

    // MiddlewareComponentMeta holds what every middleware object shares.
    function MiddlewareComponentMeta(configuration) {
        this.configuration = configuration;
    }

    // ProcessRequest is replaced by NewProcessRequest; until then a
    // middleware passes the request through unchanged.
    MiddlewareComponentMeta.prototype.ProcessRequest = function (request) {
        return this.ReturnData(request);
    };

    MiddlewareComponentMeta.prototype.NewProcessRequest = function (callback) {
        this.ProcessRequest = callback;
    };

    // The gateway replaces ReturnData and ReturnAuthData with Go functions
    // that return the same objects (build.go): cheaper than a JS call.
    MiddlewareComponentMeta.prototype.ReturnData = function (request, sessionMeta) {
        return { Request: request, SessionMeta: sessionMeta };
    };

    MiddlewareComponentMeta.prototype.ReturnAuthData = function (request, session) {
        return { Request: request, Session: session };
    };

    // DoProcessRequest is the entry point the gateway calls, with three JSON
    // strings; the gateway's request JSON already has every field. Objects
    // are accepted too, the request then gets the fields a script fills in.
    // It returns what the callback returned, {Request, SessionMeta} or
    // {Request, Session}, or undefined when that has no Request.
    MiddlewareComponentMeta.prototype.DoProcessRequest = function (request, session, config) {
        var out = typeof request === "string" ?
            this.ProcessRequest(parse(request), parse(session), parse(config)) :
            this.ProcessRequest(withDefaults(request || {}), decode(session), decode(config));
        return out && out.Request ? out : noRequest();
    };

    // NewMiddleware is what scripts instantiate:
    // new TykJS.TykMiddleware.NewMiddleware(configuration).
    function NewMiddleware(configuration) {
        this.configuration = configuration;
    }
    NewMiddleware.prototype = new MiddlewareComponentMeta({});

    // Event handlers are kept for compatibility: scripts may define them,
    // the gateway does not run them.
    function EventHandlerComponentMeta() {}

    EventHandlerComponentMeta.prototype.NewHandler = function (callback) {
        this.Handler = callback;
    };

    function NewEventHandler(configuration) {
        this.configuration = configuration;
    }
    NewEventHandler.prototype = new EventHandlerComponentMeta();

    return {
        TykMiddleware: {
            MiddlewareComponentMeta: MiddlewareComponentMeta,
            NewMiddleware: NewMiddleware
        },
        TykEventHandlers: {
            EventHandlerComponentMeta: EventHandlerComponentMeta,
            NewEventHandler: NewEventHandler
        }
    };
})();
