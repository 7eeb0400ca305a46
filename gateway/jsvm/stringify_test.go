package jsvm_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// compareStringifyJS runs JSON.stringify, as scripts get it, and otto's own
// (kept in the gateway's stash) on every value cases() makes, and reports
// each difference in output or in what was thrown. Each case is made
// afresh for each call, so toJSON and getters see the same state.
const compareStringifyJS = `
var original = __tollgate_builtins[5];
function outcome(f) {
    try { var out = f(); return typeof out === "string" ? out : "(" + typeof out + ")"; }
    catch (e) { return "threw " + e.name + ": " + e.message; }
}
var made = cases(), diffs = [];
for (var i = 0; i < made.length; i++) {
    var make = made[i];
    var mine = outcome(function () { return JSON.stringify.apply(JSON, make()); });
    var theirs = outcome(function () { return original.apply(JSON, make()); });
    if (mine !== theirs) { diffs.push("case " + i + ": " + mine + " but otto's gives " + theirs); }
}
request.SetHeaders["X-Compared"] = String(made.length);
request.SetHeaders["X-Diffs"] = diffs.slice(0, 5).join("\n");
`

// fixedCasesJS are values with a known trap each: argument lists for
// JSON.stringify, made by a function.
const fixedCasesJS = `
function cases() {
    var circular = {name: "loop"}; circular.self = circular;
    var deep = [1, {a: [2, {b: circular}]}];
    var list = [
        [{b: 1, a: "x", c: [1, "two", null, true, undefined, function () {}], d: {}}],
        [{"<tag>": "a < b && c > d", quote: "\"", back: "\\", nl: "\n\r\t\b\f", ctl: "\u0001\u001f"}],
        [{line: "\u2028\u2029", lone: "\ud800", pair: "\ud83d\ude80", text: "ünïcödé"}],
        [[0, -0, 1, -1, 0.5, 1/3, 1e21, 1e-7, 123456789012, 9007199254740993, 1e300, -1e-300]],
        [[NaN, Infinity, -Infinity, Math.pow(2, 63), -Math.pow(2, 63), Math.pow(2, 62)]],
        [undefined], [function () {}], [null], [true], ["top"], [42], [],
        [new Date(0)], [{when: new Date(86400000)}],
        [new Boolean(false)], [new String("boxed")], [new Number(7)], [[new Number(1.5), new String("s")]],
        [{toJSON: function (key) { return "key=" + key; }}],
        [{inner: {toJSON: function (key) { return {as: key}; }}}],
        [[{toJSON: function (key) { return key; }}]],
        [{toJSON: function () { throw new RangeError("no JSON for you"); }}],
        [{toJSON: function () { throw new Error("plain"); }}],
        [{get g() { return "got"; }, plain: 1}],
        [{get bad() { throw new TypeError("getter failed"); }}],
        [circular], [deep], [[[]]], [{a: {b: {c: {d: {}}}}}],
        [{a: 1, b: 2}, ["b"]], [{a: 1, b: [1, 2]}, null, 2], [{a: 1}, function (k, v) { return v; }],
        [{a: 1}, undefined], [{a: 1}, null], [/re/g], [new Error("e")], [Math], [arguments],
        [{"": 1, "0": 2, "10": 3, "9": 4, "a": 5, "B": 6}]
    ];
    return list.map(function (args) { return function () { return args; }; });
}
`

// randomCasesJS makes 400 nested values from a fixed seed.
const randomCasesJS = `
function cases() {
    var seed = 12345;
    function rnd(n) { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; }
    var strings = ["", "a", "Z9", "<&>", "\"q\"", "\\", "\n", "\u0000", "é", "\u2028", "🚀", "\ud800x", "key with space"];
    var numbers = [0, -0, 1, -7, 3.25, 1e21, 1e-7, 2e-9, 4294967296, 1/3, NaN, Infinity, -1e25];
    function value(depth) {
        switch (rnd(depth > 3 ? 6 : 9)) {
        case 0: return strings[rnd(strings.length)];
        case 1: return numbers[rnd(numbers.length)];
        case 2: return rnd(2) === 0;
        case 3: return null;
        case 4: return rnd(4) === 0 ? undefined : rnd(100);
        case 5: return rnd(5) === 0 ? function () {} : strings[rnd(strings.length)] + rnd(10);
        case 6: case 7:
            var o = {}, n = rnd(5);
            for (var i = 0; i < n; i++) { o[strings[rnd(strings.length)] + rnd(3)] = value(depth + 1); }
            return o;
        default:
            var a = [], m = rnd(4);
            for (var j = 0; j < m; j++) { a.push(value(depth + 1)); }
            return a;
        }
    }
    var list = [];
    for (var k = 0; k < 400; k++) { list.push([value(0)]); }
    return list.map(function (args) { return function () { return args; }; });
}
`

var _ = Describe("JSON.stringify", func() {
	var env *Env

	BeforeEach(func() {
		env = NewEnv()
	})

	It("writes what otto's JSON.stringify writes, and throws what it throws, for values with a trap each", func(ctx SpecContext) {
		seen := env.RunBody(ctx, fixedCasesJS+compareStringifyJS)
		Expect(seen).To(HaveKeyWithValue("X-Compared", "39"))
		Expect(seen["X-Diffs"]).To(BeEmpty())
	}, SpecTimeout(20*time.Second))

	It("writes what otto's JSON.stringify writes for 400 random nested values", func(ctx SpecContext) {
		seen := env.RunBody(ctx, randomCasesJS+compareStringifyJS)
		Expect(seen).To(HaveKeyWithValue("X-Compared", "400"))
		Expect(seen["X-Diffs"]).To(BeEmpty())
	}, SpecTimeout(20*time.Second))

	It("writes an object's members sorted by name, as otto does", func(ctx SpecContext) {
		Expect(env.RunBody(ctx, `request.SetHeaders["X-Out"] = JSON.stringify({zeta: 1, alpha: {y: 2, b: 3}});`)).
			To(HaveKeyWithValue("X-Out", `{"alpha":{"b":3,"y":2},"zeta":1}`))
	}, SpecTimeout(10*time.Second))
})
