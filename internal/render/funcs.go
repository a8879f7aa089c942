package render

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"text/template"
	"unicode/utf8"
)

// Template functions can allocate far more than they are given:
// `repeat 500000000 "x"` makes 500 MB before anything is written, and
// `$s = cat $s $s` in a loop doubles a string each time without writing
// it. boundFuncs wraps every function so that
//   - it refuses to run once the render's context is done (Ctrl-C, SIGTERM);
//   - the functions whose result can be much larger than their arguments
//     (repeat, indent, replace, until, ...) refuse, before allocating,
//     arguments that would make it larger than MaxObjectBytes;
//   - functions that copy their arguments (cat, print, list, toYaml, ...)
//     refuse arguments larger than that, counted through nested lists
//     and dicts;
//   - no function returns a string over MaxObjectBytes or a list or dict
//     of more than maxItems elements.
//
// Templates stay programs, not a sandbox: a loop without output can run
// until the render is cancelled, and a dict shared by other values and
// then grown with set can still be printed many times over.

// amplifiers estimate, from the arguments and before the call, the size
// of the result of the functions whose result can outgrow their
// arguments many times over.
var amplifiers = map[string]func(args []reflect.Value) int{
	"repeat": func(a []reflect.Value) int { return mul(int(a[0].Int()), a[1].Len()) },
	"indent": func(a []reflect.Value) int {
		return mul(int(a[0].Int()), strings.Count(a[1].String(), "\n")+1) + a[1].Len()
	},
	"nindent": func(a []reflect.Value) int {
		return mul(int(a[0].Int()), strings.Count(a[1].String(), "\n")+2) + a[1].Len()
	},
	"replace": func(a []reflect.Value) int {
		old, repl, src := a[0].String(), a[1].String(), a[2].String()
		n := utf8.RuneCountInString(src) + 1
		if old != "" {
			n = strings.Count(src, old)
		}
		return len(src) + mul(n, len(repl))
	},
	"wrapWith": func(a []reflect.Value) int {
		width, sep, s := int(a[0].Int()), a[1].String(), a[2].String()
		return len(s) + mul(len(s)/max(width, 1)+1, len(sep))
	},
	"join": func(a []reflect.Value) int {
		n := 0
		v := a[1]
		if v.Kind() == reflect.Interface && !v.IsNil() {
			v = v.Elem()
		}
		if v.Kind() == reflect.Slice || v.Kind() == reflect.Array {
			n = v.Len()
		}
		return mul(n, a[0].Len()) + valueSize(a[1].Interface(), MaxObjectBytes+1)
	},
	"until":     func(a []reflect.Value) int { return mul(abs(int(a[0].Int())), 2) },
	"untilStep": func(a []reflect.Value) int { return mul(steps(a[0].Int(), a[1].Int(), a[2].Int()), 2) },
	"seq": func(a []reflect.Value) int {
		p := a[0].Interface().([]int)
		switch len(p) {
		case 1:
			return mul(abs(p[0]), 2)
		case 2:
			return mul(abs(p[1]-p[0]), 2)
		case 3:
			return mul(steps(int64(p[0]), int64(p[2]), int64(p[1])), 2)
		}
		return 0
	},
	"regexReplaceAll":            regexReplaceSize,
	"mustRegexReplaceAll":        regexReplaceSize,
	"regexReplaceAllLiteral":     regexReplaceSize,
	"mustRegexReplaceAllLiteral": regexReplaceSize,
	"printf":                     printfSize,
}

// copiers are the functions whose result holds a copy of every argument,
// nested lists and dicts included: their arguments are measured through.
var copiers = map[string]bool{
	"toYaml": true, "toJson": true, "toPrettyJson": true, "toRawJson": true,
	"mustToJson": true, "mustToPrettyJson": true, "mustToRawJson": true,
	"toString": true, "toStrings": true, "cat": true, "quote": true, "squote": true,
	"print": true, "println": true, "printf": true,
	"list": true, "dict": true, "append": true, "push": true, "mustAppend": true,
	"mustPush": true, "prepend": true, "mustPrepend": true, "concat": true,
	"deepCopy": true, "mustDeepCopy": true,
}

// regexReplaceSize bounds regexReplaceAll(regex, s, repl): every match
// becomes repl, and each $reference in repl at most the whole of s.
func regexReplaceSize(a []reflect.Value) int {
	s, repl := a[1].String(), a[2].String()
	refs := strings.Count(repl, "$")
	bound := len(s) + mul(len(s)+1, len(repl)) + mul(refs, len(s))
	if bound <= MaxObjectBytes {
		return bound
	}
	re, err := regexp.Compile(a[0].String())
	if err != nil {
		return 0 // the function reports the bad expression
	}
	n := len(re.FindAllStringIndex(s, -1))
	return len(s) + mul(n, len(repl)) + mul(min(refs, n*10), len(s))
}

// printfSize bounds printf(format, args...): the format, the arguments,
// and the widths and precisions of its verbs (fmt caps each at 10^6).
func printfSize(a []reflect.Value) int {
	format := a[0].String()
	n := len(format)
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		w := 0
		for i++; i < len(format) && strings.IndexByte("+-# 0.*123456789", format[i]) >= 0; i++ {
			switch c := format[i]; {
			case c == '*':
				w += 1e6
			case c >= '0' && c <= '9':
				w = min(w*10+int(c-'0'), 1e6+1)
			case c == '.':
				n += w
				w = 0
			}
		}
		n += w
	}
	return n + valueSize(a[1].Interface(), MaxObjectBytes+1)
}

// steps is the number of values untilStep(start, stop, step) returns.
func steps(start, stop, step int64) int {
	if step == 0 || (stop-start > 0) != (step > 0) {
		return 0
	}
	n := (stop - start) / step
	if n > 1<<40 {
		return 1 << 40
	}
	return int(n)
}

// mul multiplies sizes without overflowing.
func mul(a, b int) int {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > (1<<50)/b {
		return 1 << 50
	}
	return a * b
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// valueSize approximates the size of v written as YAML, counting every
// path through shared lists and dicts, and stops counting past limit.
func valueSize(v any, limit int) int {
	n := 0
	var walk func(reflect.Value)
	walk = func(rv reflect.Value) {
		if n > limit {
			return
		}
		switch rv.Kind() {
		case reflect.Interface, reflect.Pointer:
			if !rv.IsNil() {
				walk(rv.Elem())
			}
		case reflect.String:
			n += rv.Len() + 2
		case reflect.Slice, reflect.Array:
			if rv.Type().Elem().Kind() == reflect.Uint8 {
				n += rv.Len()
				return
			}
			n += 2
			for i := 0; i < rv.Len() && n <= limit; i++ {
				walk(rv.Index(i))
			}
		case reflect.Map:
			n += 2
			it := rv.MapRange()
			for it.Next() && n <= limit {
				walk(it.Key())
				walk(it.Value())
			}
		case reflect.Struct:
			for i := 0; i < rv.NumField() && n <= limit; i++ {
				walk(rv.Field(i))
			}
		default:
			n += 8
		}
	}
	walk(reflect.ValueOf(v))
	return n
}

// builtinPrinters replace text/template's print, printf and println so
// they are bounded like the others.
var builtinPrinters = template.FuncMap{
	"print":   fmt.Sprint,
	"printf":  fmt.Sprintf,
	"println": fmt.Sprintln,
}

// boundFuncs returns funcs, and text/template's printers, each wrapped as
// described above.
func boundFuncs(ctx context.Context, funcs template.FuncMap) template.FuncMap {
	out := make(template.FuncMap, len(funcs)+len(builtinPrinters))
	for name, fn := range builtinPrinters {
		out[name] = boundFunc(ctx, name, fn)
	}
	for name, fn := range funcs {
		out[name] = boundFunc(ctx, name, fn)
	}
	return out
}

func boundFunc(ctx context.Context, name string, fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		fail := func(err error) []reflect.Value {
			// text/template turns a panic into the error of the call,
			// with the template's file and line.
			if t.NumOut() == 1 {
				panic(err)
			}
			return []reflect.Value{reflect.Zero(t.Out(0)), reflect.ValueOf(&err).Elem()}
		}
		if err := ctx.Err(); err != nil {
			return fail(stopped(ctx))
		}
		if est, ok := amplifiers[name]; ok {
			if n := est(args); n > MaxObjectBytes {
				return fail(tooLarge("the result would be", n, true))
			}
		}
		if copiers[name] {
			n := 0
			for _, a := range args {
				n += valueSize(a.Interface(), MaxObjectBytes+1)
			}
			if n > MaxObjectBytes {
				return fail(tooLarge("its arguments would take", n, false))
			}
		} else if n := stringArgs(args); n > 4*MaxObjectBytes {
			return fail(tooLarge("its string arguments take", n, true))
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) == 2 && !out[1].IsNil() {
			return out
		}
		if err := checkResult(out[0]); err != nil {
			return fail(err)
		}
		return out
	}).Interface()
}

// tooLarge says a function's result would be too large; n is exact or
// a lower bound.
func tooLarge(what string, n int, exact bool) error {
	if !exact {
		return fmt.Errorf("%s more than %s (%d bytes) as YAML, the most one object may be", what, mib(MaxObjectBytes), MaxObjectBytes)
	}
	return fmt.Errorf("%s %d bytes, over %s (%d bytes), the most one object may be", what, n, mib(MaxObjectBytes), MaxObjectBytes)
}

// stringArgs sums the lengths of the string arguments.
func stringArgs(args []reflect.Value) int {
	n := 0
	for _, a := range args {
		switch a.Kind() {
		case reflect.String:
			n += a.Len()
		case reflect.Interface:
			if !a.IsNil() && a.Elem().Kind() == reflect.String {
				n += a.Elem().Len()
			}
		case reflect.Slice:
			if a.Type().Elem().Kind() == reflect.Interface || a.Type().Elem().Kind() == reflect.String {
				n += stringArgs(sliceValues(a))
			}
		}
	}
	return n
}

func sliceValues(s reflect.Value) []reflect.Value {
	out := make([]reflect.Value, s.Len())
	for i := range out {
		out[i] = s.Index(i)
	}
	return out
}

// checkResult refuses a string over MaxObjectBytes and a list or dict of
// more than maxItems elements.
func checkResult(r reflect.Value) error {
	if r.Kind() == reflect.Interface && !r.IsNil() {
		r = r.Elem()
	}
	switch r.Kind() {
	case reflect.String:
		if r.Len() > MaxObjectBytes {
			return tooLarge("the result is", r.Len(), true)
		}
	case reflect.Slice, reflect.Map:
		if r.Len() > maxItems {
			return fmt.Errorf("the result has %d elements, over %d, the most one object may hold", r.Len(), maxItems)
		}
	}
	return nil
}
