package jsvm

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/robertkrimen/otto"
)

// A run's request and config objects are made from Go values with otto's
// native Object and Array constructors, not by JSON.parse of text: otto's
// JSON.parse decodes into Go maps first and then copies them into JS
// objects, twice the work and the garbage. Calling a JS function from Go
// costs more still (a scope and an arguments object per call), so the
// objects are never made by a JS factory either.

// stashJS installs the Go JSON.stringify (see stringify.go) and keeps the
// natives the gateway calls where no script can replace them: a frozen
// array in a non-enumerable, read-only global, [Object, Array, JSON,
// JSON.parse, JSON.stringify, otto's JSON.stringify]. It runs in the
// template before any script.
const stashJS = `(function (g, stringify) {
	var original = JSON.stringify;
	JSON.stringify = stringify;
	Object.defineProperty(g, "__tollgate_builtins",
		{value: Object.freeze([Object, Array, JSON, JSON.parse, stringify, original])});
})`

// builtinsJS reads the stash back in a VM; stashOttoStringify is the index
// of otto's JSON.stringify in it.
const (
	builtinsJS         = `__tollgate_builtins`
	stashOttoStringify = "5"
)

// argIndex names array indexes without formatting the small ones.
var argIndex = [...]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

func index(i int) string {
	if i < len(argIndex) {
		return argIndex[i]
	}
	return strconv.Itoa(i)
}

// newObject returns a new, empty plain object.
func (v *vm) newObject() (*otto.Object, error) {
	val, err := v.objectCtor.Call(otto.UndefinedValue())
	if err != nil {
		return nil, err
	}
	if !val.IsObject() {
		return nil, fmt.Errorf("making an object: got %s", val.Class())
	}
	return val.Object(), nil
}

// newArray returns a new array holding items.
func (v *vm) newArray(n int, item func(i int) (otto.Value, error)) (otto.Value, error) {
	val, err := v.arrayCtor.Call(otto.UndefinedValue())
	if err != nil {
		return val, err
	}
	if !val.IsObject() {
		return val, fmt.Errorf("making an array: got %s", val.Class())
	}
	arr := val.Object()
	for i := range n {
		x, err := item(i)
		if err != nil {
			return val, err
		}
		if err := arr.Set(index(i), x); err != nil {
			return val, err
		}
	}
	return val, nil
}

// jsString is s as a JS string value; invalid UTF-8 becomes U+FFFD, byte
// by byte, as JSON text would have it.
func jsString(s string) otto.Value {
	if !utf8.ValidString(s) {
		s = validUTF8(s)
	}
	v, _ := otto.ToValue(s) // a string never fails
	return v
}

// validName is a property name as JSON text would give it: invalid UTF-8
// becomes U+FFFD.
func validName(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return validUTF8(s)
}

func validUTF8(s string) string {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		out = append(out, r) // utf8.RuneError for an invalid byte
		i += size
	}
	return string(out)
}

// stringList is a JS array of strings.
func (v *vm) stringList(items []string) (otto.Value, error) {
	return v.newArray(len(items), func(i int) (otto.Value, error) { return jsString(items[i]), nil })
}

// listMap is a JS object of string arrays, keys in sorted order.
func (v *vm) listMap(m map[string][]string) (otto.Value, error) {
	obj, err := v.newObject()
	if err != nil {
		return otto.UndefinedValue(), err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		list, err := v.stringList(m[k])
		if err != nil {
			return otto.UndefinedValue(), err
		}
		if err := obj.Set(validName(k), list); err != nil {
			return otto.UndefinedValue(), err
		}
	}
	return obj.Value(), nil
}

// set sets the properties of obj in order, stopping at the first error.
func set(obj *otto.Object, props ...any) error {
	for i := 0; i < len(props); i += 2 {
		if err := obj.Set(props[i].(string), props[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// request makes Tyk's MiniRequestObject for req, with the fields a script
// fills in, empty: the object a middleware gets as its first argument.
func (v *vm) request(req *Request) (otto.Value, error) {
	headers, err := v.listMap(req.Headers)
	if err != nil {
		return headers, err
	}
	params, err := v.listMap(req.Params)
	if err != nil {
		return params, err
	}
	var empty [5]*otto.Object // SetHeaders, AddParams, ExtendedParams, ReturnOverrides, ResponseHeaders
	for i := range empty {
		if empty[i], err = v.newObject(); err != nil {
			return otto.UndefinedValue(), err
		}
	}
	deleteHeaders, err := v.stringList(nil)
	if err != nil {
		return deleteHeaders, err
	}
	deleteParams, err := v.stringList(nil)
	if err != nil {
		return deleteParams, err
	}
	overrides := empty[3]
	if err := set(overrides,
		"ResponseCode", 0, "ResponseError", "", "ResponseBody", "",
		"ResponseHeaders", empty[4], "OverrideError", false); err != nil {
		return otto.UndefinedValue(), err
	}
	r, err := v.newObject()
	if err != nil {
		return otto.UndefinedValue(), err
	}
	err = set(r,
		"Headers", headers,
		"Body", jsString(req.Body),
		"URL", jsString(req.URL),
		"Params", params,
		"Method", jsString(req.Method),
		"RequestURI", jsString(req.RequestURI),
		"Scheme", jsString(req.Scheme),
		"SetHeaders", empty[0],
		"DeleteHeaders", deleteHeaders,
		"AddParams", empty[1],
		"ExtendedParams", empty[2],
		"DeleteParams", deleteParams,
		"ReturnOverrides", overrides,
		"IgnoreBody", false)
	return r.Value(), err
}

// value makes the JS value of x, a value as encoding/json decodes into
// any: nil, bool, float64, string, []any, map[string]any (keys in sorted
// order). Other Go values go through JSON.
func (v *vm) value(x any) (otto.Value, error) {
	switch x := x.(type) {
	case nil:
		return otto.NullValue(), nil
	case bool, float64:
		return otto.ToValue(x)
	case string:
		return jsString(x), nil
	case []any:
		return v.newArray(len(x), func(i int) (otto.Value, error) { return v.value(x[i]) })
	case map[string]any:
		obj, err := v.newObject()
		if err != nil {
			return otto.UndefinedValue(), err
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			val, err := v.value(x[k])
			if err != nil {
				return otto.UndefinedValue(), err
			}
			if err := obj.Set(validName(k), val); err != nil {
				return otto.UndefinedValue(), err
			}
		}
		return obj.Value(), nil
	default:
		data, err := json.Marshal(x)
		if err != nil {
			return otto.UndefinedValue(), err
		}
		return v.jsonParse.Call(v.json, string(data))
	}
}

// config makes the third argument of a middleware: {APIID, OrgID,
// config_data}.
func (v *vm) config(spec *Spec) (otto.Value, error) {
	data, err := v.value(spec.ConfigData)
	if err != nil {
		return data, err
	}
	obj, err := v.newObject()
	if err != nil {
		return otto.UndefinedValue(), err
	}
	err = set(obj, "APIID", jsString(spec.APIID), "OrgID", jsString(spec.OrgID), "config_data", data)
	return obj.Value(), err
}

// returnData is the native ReturnData (field "SessionMeta") or
// ReturnAuthData (field "Session") of every middleware:
// {Request: request, <field>: second argument}. A JS function would cost a
// scope and an arguments object on every request.
func (p *Program) returnData(field string) func(otto.FunctionCall) otto.Value {
	return func(call otto.FunctionCall) otto.Value {
		var (
			obj *otto.Object
			err error
		)
		if v, ok := p.vms.Load(call.Otto); ok && v.(*vm).objectCtor.IsFunction() {
			obj, err = v.(*vm).newObject()
		} else { // while the scripts load, in the template
			obj, err = call.Otto.Object("({})")
		}
		if err == nil {
			err = set(obj, "Request", call.Argument(0), field, call.Argument(1))
		}
		if err != nil {
			throw(call, "ReturnData", err)
		}
		return obj.Value()
	}
}
