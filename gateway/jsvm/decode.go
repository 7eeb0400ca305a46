package jsvm

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/robertkrimen/otto"
)

// parse makes the JS value of the JSON text data, as JSON.parse would,
// but straight from the text; object members keep their order. Text that
// is not valid JSON is left to JSON.parse, for its SyntaxError.
func (v *vm) parse(data string) (otto.Value, error) {
	d := jsonDecoder{v: v, data: data}
	val, err := d.value()
	if err == nil {
		d.space()
		if d.pos == len(d.data) {
			return val, nil
		}
	}
	if d.jsErr != nil {
		return otto.UndefinedValue(), d.jsErr
	}
	return v.jsonParse.Call(v.json, data)
}

// errSyntax ends a jsonDecoder's run at text JSON.parse should judge.
var errSyntax = errors.New("not JSON")

type jsonDecoder struct {
	v     *vm
	data  string
	pos   int
	jsErr error // an error of otto's, not of the text
	depth int
}

// maxDepth bounds nesting, so that deep text cannot exhaust the stack.
const maxDepth = 1000

func (d *jsonDecoder) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) fail(err error) (otto.Value, error) {
	if d.jsErr == nil && err != errSyntax { //nolint:errorlint // a sentinel of this file
		d.jsErr = err
	}
	return otto.UndefinedValue(), err
}

func (d *jsonDecoder) value() (otto.Value, error) {
	d.space()
	if d.pos >= len(d.data) {
		return d.fail(errSyntax)
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, err := d.string()
		if err != nil {
			return d.fail(err)
		}
		return jsString(s), nil
	case c == 't':
		return d.literal("true", otto.TrueValue())
	case c == 'f':
		return d.literal("false", otto.FalseValue())
	case c == 'n':
		return d.literal("null", otto.NullValue())
	default:
		return d.number()
	}
}

func (d *jsonDecoder) literal(word string, val otto.Value) (otto.Value, error) {
	if len(d.data)-d.pos < len(word) || d.data[d.pos:d.pos+len(word)] != word {
		return d.fail(errSyntax)
	}
	d.pos += len(word)
	return val, nil
}

func (d *jsonDecoder) number() (otto.Value, error) {
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.pos++
			continue
		}
		break
	}
	tok := d.data[start:d.pos]
	// Let encoding/json judge the token: ParseFloat accepts forms JSON
	// does not ("+1", "01", ".5", "1.").
	if !json.Valid([]byte(tok)) {
		return d.fail(errSyntax)
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return d.fail(errSyntax)
	}
	return otto.ToValue(f)
}

// string reads a JSON string; escapes are decoded by encoding/json.
func (d *jsonDecoder) string() (string, error) {
	start := d.pos
	d.pos++ // the opening quote
	escaped := false
	for d.pos < len(d.data) {
		switch c := d.data[d.pos]; {
		case c == '"':
			d.pos++
			if !escaped {
				return d.data[start+1 : d.pos-1], nil
			}
			var s string
			if err := json.Unmarshal([]byte(d.data[start:d.pos]), &s); err != nil {
				return "", errSyntax
			}
			return s, nil
		case c == '\\':
			escaped = true
			d.pos += 2
		case c < 0x20:
			return "", errSyntax
		default:
			d.pos++
		}
	}
	return "", errSyntax
}

func (d *jsonDecoder) object() (otto.Value, error) {
	if d.depth++; d.depth > maxDepth {
		return d.fail(errSyntax)
	}
	defer func() { d.depth-- }()
	d.pos++ // {
	obj, err := d.v.newObject()
	if err != nil {
		return d.fail(err)
	}
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return obj.Value(), nil
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.fail(errSyntax)
		}
		name, err := d.string()
		if err != nil {
			return d.fail(err)
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.fail(errSyntax)
		}
		d.pos++
		val, err := d.value()
		if err != nil {
			return val, err
		}
		if err := obj.Set(validName(name), val); err != nil {
			return d.fail(err)
		}
		d.space()
		if d.pos >= len(d.data) {
			return d.fail(errSyntax)
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return obj.Value(), nil
		default:
			return d.fail(errSyntax)
		}
	}
}

func (d *jsonDecoder) array() (otto.Value, error) {
	if d.depth++; d.depth > maxDepth {
		return d.fail(errSyntax)
	}
	defer func() { d.depth-- }()
	d.pos++ // [
	var items []otto.Value
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
	} else {
		for {
			val, err := d.value()
			if err != nil {
				return val, err
			}
			items = append(items, val)
			d.space()
			if d.pos >= len(d.data) {
				return d.fail(errSyntax)
			}
			if d.data[d.pos] == ']' {
				d.pos++
				break
			}
			if d.data[d.pos] != ',' {
				return d.fail(errSyntax)
			}
			d.pos++
		}
	}
	arr, err := d.v.newArray(len(items), func(i int) (otto.Value, error) { return items[i], nil })
	if err != nil {
		return d.fail(err)
	}
	return arr, nil
}
