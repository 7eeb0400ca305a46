package jsvm

import (
	"errors"
	"strconv"
	"strings"

	"github.com/robertkrimen/otto"
	"github.com/robertkrimen/otto/parser"
)

// ErrTimeout is wrapped by the error Run returns when the middleware ran
// longer than Config.Timeout:
//
//	running <name>: JS middleware timed out after <timeout>
var ErrTimeout = errors.New("JS middleware timed out")

// ErrNoRequest is wrapped by the error Run returns when the middleware's
// callback returned nothing (or nothing with a Request), so there is no
// request to apply.
var ErrNoRequest = errors.New("middleware didn't return request object")

// errInterrupted is the panic value an interrupted VM raises at its next
// statement.
var errInterrupted = errors.New("jsvm: interrupted")

// ScriptError is a syntax error found by Compile or an exception thrown
// while a script ran. File and Line locate it when otto reports a position;
// Line is 0 otherwise.
type ScriptError struct {
	File    string
	Line    int
	Message string
}

// Error returns "file:line: message", leaving out what is unknown.
func (e *ScriptError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Message
	case e.File != "":
		return e.File + ": " + e.Message
	default:
		return e.Message
	}
}

// scriptError turns an otto error into a *ScriptError. file is used when
// otto does not say where the error happened.
func scriptError(err error, file string) *ScriptError {
	var se *ScriptError
	if errors.As(err, &se) {
		return se
	}
	var list *parser.ErrorList
	if errors.As(err, &list) && len(*list) > 0 {
		return parseError((*list)[0])
	}
	var perr *parser.Error
	if errors.As(err, &perr) {
		return parseError(perr)
	}
	var oerr *otto.Error
	if errors.As(err, &oerr) {
		se := &ScriptError{File: file, Message: oerr.Error()}
		if f, line, ok := firstLocation(oerr.String()); ok {
			se.File, se.Line = f, line
		}
		return se
	}
	return &ScriptError{File: file, Message: err.Error()}
}

func parseError(e *parser.Error) *ScriptError {
	return &ScriptError{File: e.Position.Filename, Line: e.Position.Line, Message: "SyntaxError: " + e.Message}
}

// firstLocation finds the innermost script position in otto's stack trace,
// whose lines look like "    at callee (file:line:column)" or
// "    at file:line:column". Frames of tollgate's own helpers (guardJS,
// hookJS), which run without a file name as <anonymous>, are skipped: the
// error belongs to the script that called them.
func firstLocation(trace string) (file string, line int, ok bool) {
	lines := strings.Split(trace, "\n")
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		l, found := strings.CutPrefix(l, "at ")
		if !found {
			continue
		}
		if i := strings.LastIndexByte(l, '('); i >= 0 && strings.HasSuffix(l, ")") {
			l = l[i+1 : len(l)-1]
		}
		// file:line:column, where file itself may contain colons.
		c := strings.LastIndexByte(l, ':')
		if c < 0 {
			continue
		}
		rest := l[:c]
		c = strings.LastIndexByte(rest, ':')
		if c < 0 {
			continue
		}
		n, err := strconv.Atoi(rest[c+1:])
		if err != nil || n <= 0 || rest[:c] == "<anonymous>" {
			continue
		}
		return rest[:c], n, true
	}
	return "", 0, false
}
