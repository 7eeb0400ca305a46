package jsvm

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/robertkrimen/otto"

	"github.com/tollgate/tollgate/internal/jsonw"
)

// JSON.stringify in scripts is a Go function that writes otto's output
// directly. otto's own copies the value into Go maps and slices and hands
// them to encoding/json, which sorts the map keys by reflection: the seed's
// refresh pays that for every request. The output is byte for byte
// otto's: members sorted by name, strings escaped by encoding/json (HTML
// characters included), integral numbers as integers, NaN and Infinity as
// null, functions and undefined left out (null in arrays), toJSON called
// with its key, and "Converting circular structure to JSON" for cycles.
// Calls with a replacer or an indent, and values otto treats specially
// (Boolean, String and Number objects, Go values), are passed to otto's
// JSON.stringify; a spec compares the two on many values.

// stringifier is one call of JSON.stringify.
type stringifier struct {
	call     otto.FunctionCall
	original otto.Value   // otto's JSON.stringify
	stack    []otto.Value // the objects being written, for cycles
}

// jsonStringify is the JSON.stringify scripts call.
func (p *Program) jsonStringify(call otto.FunctionCall) otto.Value {
	original := p.originalStringify(call)
	args := call.ArgumentList
	if len(args) > 2 || (len(args) == 2 && args[1].IsObject()) {
		return callOriginal(call, original, args...)
	}
	s := stringifier{call: call, original: original}
	out, ok := s.value(nil, call.Argument(0), "")
	if !ok {
		return otto.UndefinedValue()
	}
	return str(call, string(out))
}

// originalStringify is otto's JSON.stringify of the calling VM.
func (p *Program) originalStringify(call otto.FunctionCall) otto.Value {
	if v, ok := p.vms.Load(call.Otto); ok && v.(*vm).ottoStringify.IsFunction() {
		return v.(*vm).ottoStringify
	}
	// While the scripts load, in the template.
	builtins, err := call.Otto.Object(builtinsJS)
	if err == nil {
		if fn, err := builtins.Get(stashOttoStringify); err == nil && fn.IsFunction() {
			return fn
		}
	}
	panic(call.Otto.MakeCustomError("Error", "JSON.stringify: the native function is missing"))
}

// callOriginal calls fn, rethrowing what it throws to the script.
func callOriginal(call otto.FunctionCall, fn otto.Value, args ...otto.Value) otto.Value {
	list := make([]any, len(args))
	for i, a := range args {
		list[i] = a
	}
	out, err := fn.Call(otto.UndefinedValue(), list...)
	if err != nil {
		rethrow(call, err)
	}
	return out
}

// rethrow raises err, what a JS function called from Go threw, in the
// calling script. otto hands Go the name and message of what was thrown,
// not the value: the script gets an error of that name and message.
func rethrow(call otto.FunctionCall, err error) {
	var jsErr *otto.Error
	if errors.As(err, &jsErr) {
		name, msg, ok := strings.Cut(jsErr.Error(), ": ")
		if !ok {
			name, msg = "Error", jsErr.Error()
		}
		panic(call.Otto.MakeCustomError(name, msg))
	}
	panic(call.Otto.MakeCustomError("Error", err.Error()))
}

// value appends the JSON of val (the member key of its holder) to dst; ok
// is false when val has no JSON (undefined, a function).
func (s *stringifier) value(dst []byte, val otto.Value, key string) ([]byte, bool) {
	if val.IsObject() {
		toJSON, err := val.Object().Get("toJSON")
		s.check(err)
		if toJSON.IsFunction() {
			val, err = toJSON.Call(val, key)
			s.check(err)
		}
	}
	switch {
	case val.IsString():
		return jsonw.AppendString(dst, val.String()), true
	case val.IsNumber():
		return appendNumber(dst, val), true
	case val.IsBoolean():
		b, _ := val.ToBoolean()
		return strconv.AppendBool(dst, b), true
	case val.IsNull():
		return append(dst, "null"...), true
	case !val.IsObject():
		return dst, false // undefined
	}
	for _, held := range s.stack {
		if held == val {
			panic(s.call.Otto.MakeTypeError("Converting circular structure to JSON"))
		}
	}
	switch val.Class() {
	case "Function":
		return dst, false
	case "Array":
		s.stack = append(s.stack, val)
		defer func() { s.stack = s.stack[:len(s.stack)-1] }()
		return s.array(dst, val.Object()), true
	case "Boolean", "String", "Number", "GoArray", "GoSlice", "GoMap", "GoStruct":
		// Converted or marshalled by otto: its output for this value.
		out := callOriginal(s.call, s.original, val)
		if !out.IsString() {
			return dst, false
		}
		return append(dst, out.String()...), true
	default:
		s.stack = append(s.stack, val)
		defer func() { s.stack = s.stack[:len(s.stack)-1] }()
		return s.object(dst, val.Object()), true
	}
}

func (s *stringifier) array(dst []byte, arr *otto.Object) []byte {
	length, err := arr.Get("length")
	s.check(err)
	n, err := length.ToInteger()
	s.check(err)
	if n > MaxArrayLength {
		panic(s.call.Otto.MakeRangeError(tooLong("JSON.stringify", n)))
	}
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		name := index(int(i))
		item, err := arr.Get(name)
		s.check(err)
		var ok bool
		if dst, ok = s.value(dst, item, name); !ok {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, ']')
}

// member is one written member of an object: its name and where its value
// is in the object's scratch buffer.
type member struct {
	name       string
	start, end int
}

func (s *stringifier) object(dst []byte, obj *otto.Object) []byte {
	// Values are read in property order (getters and toJSON run in the
	// order otto runs them) and written in name order.
	var (
		scratch []byte
		members []member
	)
	for _, name := range obj.Keys() {
		val, err := obj.Get(name)
		s.check(err)
		start := len(scratch)
		var ok bool
		if scratch, ok = s.value(scratch, val, name); ok {
			members = append(members, member{name, start, len(scratch)})
		}
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.name, b.name) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonw.AppendString(dst, m.name)
		dst = append(dst, ':')
		dst = append(dst, scratch[m.start:m.end]...)
	}
	return append(dst, '}')
}

// check rethrows an exception a getter, toJSON or otto's stringify threw.
func (s *stringifier) check(err error) {
	if err != nil {
		rethrow(s.call, err)
	}
}

// appendNumber writes a number as otto does: integers (and every integral
// value within int64) as integers, NaN and Infinity as null, other values
// as encoding/json writes a float64.
func appendNumber(dst []byte, val otto.Value) []byte {
	raw, _ := val.Export()
	switch n := raw.(type) {
	case int8, int16, uint8, uint16, uint32, int, int64:
		i, _ := val.ToInteger()
		return strconv.AppendInt(dst, i, 10)
	case float64:
		switch {
		case n == 0:
			return append(dst, '0')
		case math.IsNaN(n) || math.IsInf(n, 0):
			return append(dst, "null"...)
		case n < math.MaxInt64 && n > math.MinInt64 && n == math.Trunc(n):
			return strconv.AppendInt(dst, int64(n), 10)
		}
		return jsonw.AppendFloat(dst, n)
	default:
		f, _ := val.ToFloat()
		return appendNumber(dst, mustValue(f))
	}
}

func mustValue(f float64) otto.Value {
	v, _ := otto.ToValue(f)
	return v
}
