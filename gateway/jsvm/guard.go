package jsvm

import (
	"fmt"
	"strconv"

	"github.com/robertkrimen/otto"
)

// MaxArrayLength bounds the length of an array (or array-like object)
// that one call of a builtin may walk. otto's Array.prototype methods and
// Function.prototype.apply allocate for, or loop over, every index up to
// length in a single Go call, which neither the timeout nor the
// MemoryBudget can cut short, and a length costs nothing to set:
// new Array(4294967295).join() asks for 64 GiB at once and kills the
// process. Past this length those builtins, JSON.stringify and the
// reading of a middleware's result throw a RangeError instead. A million
// elements is far beyond what a request's middleware handles.
const MaxArrayLength = 1 << 20

// guardJS wraps the Array.prototype methods that walk every index, and
// Function.prototype.apply, so that they refuse a length past cap before
// the native runs (with the natives of call and apply, which no script can
// replace). It runs in the template before any script.
const guardJS = `(function (A, F, cap) {
	var call = F.prototype.call, apply = F.prototype.apply;
	var refuse = function (what, n) {
		throw new RangeError(what + ": length " + n + " is more than " + cap);
	};
	var names = ["concat", "every", "filter", "forEach", "indexOf", "join", "lastIndexOf", "map",
		"reduce", "reduceRight", "reverse", "shift", "slice", "some", "sort", "splice", "toLocaleString", "unshift"];
	var guard = function (name) {
		var native = A.prototype[name];
		A.prototype[name] = function () {
			var n = this == null ? 0 : this.length >>> 0;
			if (n > cap) { refuse("Array.prototype." + name, n); }
			if (name === "concat") {
				for (var i = 0; i < arguments.length; i++) {
					var m = A.isArray(arguments[i]) ? arguments[i].length >>> 0 : 0;
					if (m > cap) { refuse("Array.prototype.concat", m); }
				}
			}
			return call.call(apply, native, this, arguments);
		};
	};
	for (var i = 0; i < names.length; i++) { guard(names[i]); }
	F.prototype.apply = function (self, args) {
		var n = args == null ? 0 : args.length >>> 0;
		if (n > cap) { refuse("Function.prototype.apply", n); }
		return call.call(apply, this, self, args);
	};
})`

// guardBuiltins installs guardJS in the template.
func guardBuiltins(tmpl *otto.Otto) error {
	install, err := tmpl.Run(guardJS)
	if err == nil {
		var a, f otto.Value
		if a, err = tmpl.Get("Array"); err == nil {
			if f, err = tmpl.Get("Function"); err == nil {
				_, err = install.Call(otto.UndefinedValue(), a, f, MaxArrayLength)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("guarding the builtins: %w", err)
	}
	return nil
}

// tooLong is the RangeError message for an array of length n, as guardJS
// words it.
func tooLong(what string, n int64) string {
	return what + ": length " + strconv.FormatInt(n, 10) + " is more than " + strconv.Itoa(MaxArrayLength)
}
