package apidef

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// DuplicateKeyError reports a JSON object that names the same key twice.
// encoding/json keeps only the last value, which silently drops data (the
// seed's storage.hosts lists six nodes under three names), so tollgate
// refuses such a document instead.
type DuplicateKeyError struct {
	Path string // dotted path of the object holding the key, "" for the root
	Key  string
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("%s: key %q appears more than once", displayPath(e.Path), e.Key)
}

// Report is what DecodeStrict learns about a document beyond what
// json.Unmarshal tells: the fields the target type does not have.
type Report struct {
	Unknown []string // dotted paths, in document order
}

// DecodeStrict checks data against the shape of v, then unmarshals it.
// Syntax errors carry line and column, type errors the dotted field path,
// and duplicate keys are errors.
func DecodeStrict(data []byte, v any) (Report, error) {
	rep, err := checkJSON(data, reflect.TypeOf(v))
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return rep, describeJSONError(data, err)
	}
	return rep, nil
}

// checkJSON walks the token stream of data alongside type t. Struct types
// map keys to fields by their json tags; map keys are data, so they are
// never reported as unknown, but they are still checked for duplicates.
func checkJSON(data []byte, t reflect.Type) (Report, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec, data: data}
	if err := w.value(t, ""); err != nil {
		return w.rep, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return w.rep, fmt.Errorf("%s: unexpected data after the top-level value", w.position())
	}
	return w.rep, nil
}

type walker struct {
	dec   *json.Decoder
	data  []byte
	rep   Report
	depth int
}

func (w *walker) position() string {
	line, col := lineCol(w.data, w.dec.InputOffset())
	return fmt.Sprintf("line %d, column %d", line, col)
}

func (w *walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, describeJSONError(w.data, err)
	}
	return tok, nil
}

// MaxDepth bounds how deeply objects and arrays may nest in a document
// DecodeStrict reads: deeper nesting costs memory and stack out of all
// proportion to the document's size, and no configuration needs it.
const MaxDepth = 64

func (w *walker) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if ok && (delim == '{' || delim == '[') {
		w.depth++
		defer func() { w.depth-- }()
		if w.depth > MaxDepth {
			return fmt.Errorf("%s: %s nests more than %d objects and arrays deep", w.position(), displayPath(path), MaxDepth)
		}
	}
	if !ok {
		return nil // scalar: json.Unmarshal checks its type
	}
	switch delim {
	case '{':
		return w.object(t, path)
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	}
	return fmt.Errorf("%s: unexpected %q", w.position(), delim)
}

func (w *walker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	isStruct := t != nil && t.Kind() == reflect.Struct
	if isStruct {
		fields = jsonFields(t)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key := tok.(string)
		if seen[key] {
			return &DuplicateKeyError{Path: path, Key: key}
		}
		seen[key] = true
		child := joinPath(path, key)
		var ct reflect.Type
		switch {
		case isStruct:
			ft, known := fields[key]
			if !known {
				ft, known = fieldFold(fields, key)
			}
			if !known {
				w.rep.Unknown = append(w.rep.Unknown, child)
			}
			ct = ft
		case t != nil && t.Kind() == reflect.Map:
			ct = t.Elem()
		}
		if err := w.value(ct, child); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

// fieldFold matches a key to a field the way encoding/json does when no
// exact match exists: case-insensitively.
func fieldFold(fields map[string]reflect.Type, key string) (reflect.Type, bool) {
	for name, ft := range fields {
		if strings.EqualFold(name, key) {
			return ft, true
		}
	}
	return nil, false
}

// jsonFields lists the JSON names of a struct's fields, following embedded
// structs as encoding/json does.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// describeJSONError turns encoding/json's errors into ones that name a line
// and column (syntax) or a dotted field path (types).
func describeJSONError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line, col := lineCol(data, syn.Offset)
		return fmt.Errorf("line %d, column %d: invalid JSON: %s", line, col, syn.Error())
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "(document)"
		}
		return fmt.Errorf("%s: cannot use a JSON %s as %s", field, typ.Value, typ.Type)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		line, col := lineCol(data, int64(len(data)))
		return fmt.Errorf("line %d, column %d: invalid JSON: unexpected end of input", line, col)
	}
	return err
}

func lineCol(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func displayPath(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}
