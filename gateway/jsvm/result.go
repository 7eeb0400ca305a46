package jsvm

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/robertkrimen/otto"
)

// readResult reads what ProcessRequest returned straight from the JS
// objects: cheaper than JSON.stringify in otto and decoding in Go, with the
// same type rules as decoding JSON into Result (a header value must be a
// string, ResponseCode an integer, ...). SessionMeta and Session, free-form
// JSON, do go through JSON. It runs under the run's time limit, since
// reading a property may call a getter.
func readResult(v *vm, out otto.Value) (*Result, error) {
	if !out.IsObject() {
		return nil, ErrNoRequest
	}
	o := out.Object()
	reqVal, err := o.Get("Request")
	if err != nil {
		return nil, err
	}
	if !reqVal.IsObject() {
		return nil, ErrNoRequest
	}
	r := reader{obj: reqVal.Object(), path: "Request"}
	res := new(Result)
	rr := &res.Request
	rr.SetHeaders = r.stringMap("SetHeaders")
	rr.DeleteHeaders = r.stringList("DeleteHeaders")
	rr.Body = r.string("Body")
	rr.URL = r.string("URL")
	rr.AddParams = r.stringMap("AddParams")
	rr.ExtendedParams = r.listMap("ExtendedParams")
	rr.DeleteParams = r.stringList("DeleteParams")
	rr.IgnoreBody = r.bool("IgnoreBody")
	if ro, ok := r.object("ReturnOverrides"); ok {
		rr.ReturnOverrides = ReturnOverrides{
			ResponseCode:    ro.int("ResponseCode"),
			ResponseError:   ro.string("ResponseError"),
			ResponseBody:    ro.string("ResponseBody"),
			ResponseHeaders: ro.stringMap("ResponseHeaders"),
			OverrideError:   ro.bool("OverrideError"),
		}
		if ro.err != nil {
			return nil, decodeError(ro.err)
		}
	}
	if r.err != nil {
		return nil, decodeError(r.err)
	}

	top := reader{obj: o, path: "result"}
	res.AuthValue = top.string("AuthValue")
	if top.err != nil {
		return nil, decodeError(top.err)
	}

	meta, err := v.stringify(o, "SessionMeta")
	if err != nil {
		return nil, decodeError(err)
	}
	if meta != nil {
		if err := json.Unmarshal(meta, &res.SessionMeta); err != nil {
			return nil, decodeError(fmt.Errorf("SessionMeta: %w", err))
		}
	}
	if res.Session, err = v.stringify(o, "Session"); err != nil {
		return nil, decodeError(err)
	}
	// Tyk decodes Session into a SessionState and answers 500 when it
	// cannot (TestJSVM_StopProxyWhenFail): a session is an object.
	if len(res.Session) > 0 && res.Session[0] != '{' {
		return nil, decodeError(fmt.Errorf("Session: %s is not a session object", truncate(res.Session, 40)))
	}
	return res, nil
}

// truncate shortens JSON for an error message.
func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

func decodeError(err error) error {
	return fmt.Errorf("decoding the middleware's result: %w", err)
}

// stringify returns o[name] as JSON, or nil when it is undefined or null.
func (v *vm) stringify(o *otto.Object, name string) (json.RawMessage, error) {
	val, err := o.Get(name)
	if err != nil {
		return nil, err
	}
	if val.IsUndefined() || val.IsNull() {
		return nil, nil
	}
	s, err := v.jsonStringify.Call(otto.UndefinedValue(), val)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !s.IsString() {
		return nil, nil // a function, say: not JSON
	}
	return json.RawMessage(s.String()), nil
}

// reader reads typed fields of a JS object, remembering the first error.
type reader struct {
	obj  *otto.Object
	path string
	err  error
}

func (r *reader) get(name string) (otto.Value, bool) {
	if r.err != nil {
		return otto.Value{}, false
	}
	val, err := r.obj.Get(name)
	if err != nil {
		r.err = fmt.Errorf("%s.%s: %w", r.path, name, err)
		return otto.Value{}, false
	}
	return val, !val.IsUndefined() && !val.IsNull()
}

func (r *reader) fail(name, want string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s.%s is not %s", r.path, name, want)
	}
}

func (r *reader) string(name string) string {
	val, ok := r.get(name)
	if !ok {
		return ""
	}
	if !val.IsString() {
		r.fail(name, "a string")
		return ""
	}
	return val.String()
}

func (r *reader) bool(name string) bool {
	val, ok := r.get(name)
	if !ok {
		return false
	}
	if !val.IsBoolean() {
		r.fail(name, "a boolean")
		return false
	}
	b, _ := val.ToBoolean()
	return b
}

func (r *reader) int(name string) int {
	val, ok := r.get(name)
	if !ok {
		return 0
	}
	f, err := val.ToFloat()
	if !val.IsNumber() || err != nil || f != float64(int(f)) {
		r.fail(name, "an integer")
		return 0
	}
	return int(f)
}

// object returns the reader of a nested plain object (not an array).
func (r *reader) object(name string) (*reader, bool) {
	val, ok := r.get(name)
	if !ok {
		return nil, false
	}
	if !val.IsObject() || val.Class() == "Array" {
		r.fail(name, "an object")
		return nil, false
	}
	return &reader{obj: val.Object(), path: r.path + "." + name}, true
}

// list returns the reader of a nested array and its length.
func (r *reader) list(name string) (*reader, int) {
	val, ok := r.get(name)
	if !ok {
		return nil, 0
	}
	if val.Class() != "Array" {
		r.fail(name, "an array")
		return nil, 0
	}
	arr := &reader{obj: val.Object(), path: r.path + "." + name}
	length, ok := arr.get("length")
	if !ok {
		return nil, 0
	}
	n, err := length.ToInteger()
	if err != nil {
		r.fail(name, "an array")
		return nil, 0
	}
	if n > MaxArrayLength {
		r.fail(name, fmt.Sprintf("an array of at most %d elements", MaxArrayLength))
		return nil, 0
	}
	return arr, int(n)
}

func (r *reader) stringList(name string) []string {
	arr, n := r.list(name)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = arr.string(strconv.Itoa(i))
	}
	if arr.err != nil && r.err == nil {
		r.err = arr.err
	}
	return out
}

func (r *reader) stringMap(name string) map[string]string {
	m, ok := r.object(name)
	if !ok {
		return nil
	}
	keys := m.obj.Keys()
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = m.string(k)
	}
	if m.err != nil && r.err == nil {
		r.err = m.err
	}
	return out
}

func (r *reader) listMap(name string) map[string][]string {
	m, ok := r.object(name)
	if !ok {
		return nil
	}
	keys := m.obj.Keys()
	if len(keys) == 0 {
		return nil
	}
	out := make(map[string][]string, len(keys))
	for _, k := range keys {
		out[k] = m.stringList(k)
	}
	if m.err != nil && r.err == nil {
		r.err = m.err
	}
	return out
}
