package jsvm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/robertkrimen/otto"
)

var (
	errNoHost     = errors.New("the gateway offers no key or batch services here")
	errNotRunning = errors.New("called outside a run")
)

// install defines the JS API's global functions in the template; copies
// share them. Functions that need the run find it through call.Otto.
func (p *Program) install(js *otto.Otto) error {
	for _, fn := range []struct {
		name string
		fn   func(otto.FunctionCall) otto.Value
	}{
		{"log", p.jsLog},
		{"rawlog", p.jsRawLog},
		{"b64enc", codec("b64enc", encodeWith(base64.StdEncoding))},
		{"b64dec", codec("b64dec", decodeStd)},
		{"rawb64enc", codec("rawb64enc", encodeWith(base64.RawStdEncoding))},
		{"rawb64dec", codec("rawb64dec", decodeRaw)},
		{"TykGetKeyData", p.jsGetKeyData},
		{"TykSetKeyData", p.jsSetKeyData},
		{"TykBatchRequest", p.jsBatchRequest},
		{"TykMakeHttpRequest", p.jsMakeHTTPRequest},
	} {
		if err := js.Set(fn.name, fn.fn); err != nil {
			return fmt.Errorf("defining %s: %w", fn.name, err)
		}
	}
	return nil
}

// throw raises err as a JS Error, which the script may catch; uncaught it
// fails the run.
func throw(call otto.FunctionCall, fn string, err error) {
	panic(call.Otto.MakeCustomError("Error", fn+": "+err.Error()))
}

func str(call otto.FunctionCall, s string) otto.Value {
	v, err := call.Otto.ToValue(s)
	if err != nil {
		throw(call, "returning a string", err)
	}
	return v
}

// log(msg) logs msg at Info with type=log-msg.
func (p *Program) jsLog(call otto.FunctionCall) otto.Value {
	p.log.Info(call.Argument(0).String(), "type", "log-msg")
	return otto.UndefinedValue()
}

// rawlog(msg) writes msg and a newline to Config.RawLog as they are.
func (p *Program) jsRawLog(call otto.FunctionCall) otto.Value {
	line := call.Argument(0).String() + "\n"
	p.rawMu.Lock()
	_, err := io.WriteString(p.rawLog, line)
	p.rawMu.Unlock()
	if err != nil {
		throw(call, "rawlog", err)
	}
	return otto.UndefinedValue()
}

// codec turns a string function into a JS function of one string.
func codec(name string, f func(string) (string, error)) func(otto.FunctionCall) otto.Value {
	return func(call otto.FunctionCall) otto.Value {
		out, err := f(call.Argument(0).String())
		if err != nil {
			throw(call, name, err)
		}
		return str(call, out)
	}
}

func encodeWith(enc *base64.Encoding) func(string) (string, error) {
	return func(s string) (string, error) { return enc.EncodeToString([]byte(s)), nil }
}

// decodeStd decodes padded base64 and, failing that, unpadded.
func decodeStd(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var rawErr error
		if b, rawErr = base64.RawStdEncoding.DecodeString(s); rawErr != nil {
			return "", err
		}
	}
	return string(b), nil
}

// decodeRaw decodes unpadded base64, tolerating padding.
func decodeRaw(s string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	return string(b), err
}

// runContext is the context of the run that is calling a Go function.
func (p *Program) runContext(call otto.FunctionCall) (context.Context, error) {
	if v, ok := p.vms.Load(call.Otto); ok {
		if ctx := v.(*vm).ctx; ctx != nil {
			return ctx, nil
		}
	}
	return nil, errNotRunning
}

// callGo calls f with the run's context, turning a panic into an error so
// that nothing but a JS exception leaves a Go function.
func (p *Program) callGo(call otto.FunctionCall, f func(ctx context.Context) (string, error)) (out string, err error) {
	ctx, err := p.runContext(call)
	if err != nil {
		return "", err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(ctx)
}

// TykGetKeyData(key, apiID) returns the key's session as a JSON string.
func (p *Program) jsGetKeyData(call otto.FunctionCall) otto.Value {
	key, apiID := call.Argument(0).String(), call.Argument(1).String()
	out, err := p.callGo(call, func(ctx context.Context) (string, error) {
		if p.host == nil {
			return "", errNoHost
		}
		return p.host.GetKeyData(ctx, key, apiID)
	})
	if err != nil {
		throw(call, "TykGetKeyData", err)
	}
	return str(call, out)
}

// TykSetKeyData(key, sessionJSON, suppressReset) stores a session; quota
// and rate-limit counters are kept when suppressReset reads as "1" (the
// string "1" or the number 1).
func (p *Program) jsSetKeyData(call otto.FunctionCall) otto.Value {
	key, session := call.Argument(0).String(), call.Argument(1).String()
	suppressReset := call.Argument(2).String() == "1"
	_, err := p.callGo(call, func(ctx context.Context) (string, error) {
		if p.host == nil {
			return "", errNoHost
		}
		return "", p.host.SetKeyData(ctx, key, session, suppressReset)
	})
	if err != nil {
		throw(call, "TykSetKeyData", err)
	}
	return otto.UndefinedValue()
}

// TykBatchRequest(requestJSON) runs a batch as /tyk/batch does and returns
// the replies as a JSON string.
func (p *Program) jsBatchRequest(call otto.FunctionCall) otto.Value {
	body := call.Argument(0).String()
	out, err := p.callGo(call, func(ctx context.Context) (string, error) {
		if p.host == nil {
			return "", errNoHost
		}
		return p.host.BatchRequest(ctx, body)
	})
	if err != nil {
		throw(call, "TykBatchRequest", err)
	}
	return str(call, out)
}

// httpRequest is TykMakeHttpRequest's argument.
type httpRequest struct {
	Method   string            `json:"Method"`
	Body     string            `json:"Body"`
	Headers  map[string]string `json:"Headers"`
	Domain   string            `json:"Domain"`
	Resource string            `json:"Resource"`
	FormData map[string]string `json:"FormData"`
}

// httpResponse is TykMakeHttpRequest's result; scripts written for either
// of Tyk's spellings find their fields.
type httpResponse struct {
	Code         int         `json:"Code"`
	Body         string      `json:"Body"`
	Headers      http.Header `json:"Headers"`
	CodeLower    int         `json:"code"`
	BodyLower    string      `json:"body"`
	HeadersLower http.Header `json:"headers"`
}

// TykMakeHttpRequest(requestJSON) makes an HTTP request to Domain+Resource
// and returns {Code, Body, Headers, code, body, headers} as a JSON string.
// FormData is sent url-encoded when Body is empty. The request ends when
// the run's time is up.
func (p *Program) jsMakeHTTPRequest(call otto.FunctionCall) otto.Value {
	arg := call.Argument(0).String()
	out, err := p.callGo(call, func(ctx context.Context) (string, error) {
		var in httpRequest
		if err := json.Unmarshal([]byte(arg), &in); err != nil {
			return "", fmt.Errorf("decoding the request: %w", err)
		}
		return p.makeHTTPRequest(ctx, &in)
	})
	if err != nil {
		throw(call, "TykMakeHttpRequest", err)
	}
	return str(call, out)
}

func (p *Program) makeHTTPRequest(ctx context.Context, in *httpRequest) (string, error) {
	method := in.Method
	if method == "" {
		method = http.MethodGet
	}
	body, form := in.Body, false
	if body == "" && len(in.FormData) > 0 {
		values := make(url.Values, len(in.FormData))
		for k, v := range in.FormData {
			values.Set(k, v)
		}
		body, form = values.Encode(), true
	}
	req, err := http.NewRequestWithContext(ctx, method, in.Domain+in.Resource, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	if form {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range in.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading the response: %w", err)
	}
	out, err := json.Marshal(httpResponse{
		Code: resp.StatusCode, Body: string(b), Headers: resp.Header,
		CodeLower: resp.StatusCode, BodyLower: string(b), HeadersLower: resp.Header,
	})
	return string(out), err
}
