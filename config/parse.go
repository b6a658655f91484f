package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Variable string // full name, e.g. FLOWSHIELD_WINDOW
	Value    string // as given (redacted for secrets)
	Where    string // optional: "in group \"web\"", "at /etc/networks line 3"
	Expected string // the form that was expected
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Variable)
	b.WriteString("=")
	b.WriteString(strconv.Quote(p.Value))
	if p.Where != "" {
		b.WriteString(" ")
		b.WriteString(p.Where)
	}
	b.WriteString(": expected ")
	b.WriteString(p.Expected)
	return b.String()
}

// Error lists every problem found, one line each.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// valueError is what a parser refused: an item of the value and the form
// it expected ("": the variable's own). env wraps it in a ParseError, which
// names only the Go field; the variable comes from the list.
type valueError struct {
	Value, Where, Expected string
	// EmptyItem: the value has an empty item (nothing to quote): the
	// problem quotes the whole value, and its form says why.
	EmptyItem bool
}

// valueErrors are a parser's refusals, each a problem of its own.
type valueErrors []valueError

func (e valueErrors) Error() string {
	lines := make([]string, len(e))
	for i, v := range e {
		lines[i] = fmt.Sprintf("%q %s: expected %s", v.Value, v.Where, v.Expected)
	}
	return strings.Join(lines, "; ")
}

// Forms the parsers name themselves.
const (
	expectPrefix     = "an IP prefix such as 203.0.113.0/24 or 2001:db8::/48, or a bare address"
	expectPrefixList = "a comma-separated list of IP prefixes such as 203.0.113.0/24,2001:db8::/48"
	noEmptyItem      = " with no empty item (a doubled or trailing comma)"
	redacted         = "(redacted)"
)

// emptyItem refuses a list with an empty item; form "" is the variable's.
func emptyItem(form, where string) valueErrors {
	return valueErrors{{EmptyItem: true, Expected: form, Where: where}}
}

// resolved fills in what a parser leaves to its caller: the form (for
// ""), and for an empty item the whole value it is in.
func (e valueErrors) resolved(whole, form string) valueErrors {
	out := make(valueErrors, len(e))
	for i, r := range e {
		if r.Expected == "" {
			r.Expected = form
		}
		if r.EmptyItem {
			r.Value, r.Expected, r.EmptyItem = whole, r.Expected+noEmptyItem, false
		}
		out[i] = r
	}
	return out
}

// refusing adapts a parser that refuses with valueErrors to env.
func refusing[T any](parse func(string) (T, valueErrors)) env.ParserFunc {
	return func(s string) (any, error) {
		v, refused := parse(s)
		if refused != nil {
			return nil, refused
		}
		return v, nil
	}
}

// funcMap parses the types env has no parser for, or one that does not
// take what the contract does.
var funcMap = map[reflect.Type]env.ParserFunc{
	// A list as a whole: env would hand each item to netip.Prefix's
	// UnmarshalText, which takes neither a bare address nor spaces.
	reflect.TypeFor[[]netip.Prefix]():   refusing(func(s string) ([]netip.Prefix, valueErrors) { return parsePrefixList(s, "") }),
	reflect.TypeFor[time.Duration]():    func(s string) (any, error) { return parseSeconds(s) },
	reflect.TypeFor[bool]():             parseBool,
	reflect.TypeFor[routeros.Action]():  refusing(parseAction),
	reflect.TypeFor[detect.Direction](): refusing(parseDirection),
	reflect.TypeFor[LogFormat]():        parseLogFormat,
	reflect.TypeFor[HostGroups]():       refusing(parseHostGroups),
}

// parser is one reading of an environment.
type parser struct {
	// raw is each variable's value as given (by name without prefix), a
	// secret's replaced by its file's content: what a problem quotes.
	raw      map[string]string
	problems []Problem
	bad      map[string]bool // variables with a problem already
	sources  map[string]string
	warnings []string
}

func parse(environ map[string]string, requireNetworks bool) (Configuration, error) {
	p := &parser{raw: map[string]string{}, bad: map[string]bool{}, sources: map[string]string{}}
	// env reads the known variables only, trimmed (a secret as it is), so
	// that set-but-blank takes the default and " 123 " is 123.
	values := map[string]string{}
	for _, v := range variables {
		value, ok := environ[EnvPrefix+v.Name]
		if !ok {
			continue
		}
		p.raw[v.Name] = value
		if !v.Secret {
			value = strings.TrimSpace(value)
		}
		values[EnvPrefix+v.Name] = value
	}
	var e environment
	err := env.ParseWithOptions(&e, env.Options{
		Environment: values,
		Prefix:      EnvPrefix,
		FuncMap:     funcMap,
		OnSet: func(key string, _ any, _ bool) {
			if values[key] != "" {
				p.sources[strings.TrimPrefix(key, EnvPrefix)] = "environment"
			}
		},
	})
	if err != nil {
		p.envErrors(err)
	}
	p.validate(&e, requireNetworks)
	c := e.Configuration
	c.sources = p.sources
	c.Warnings = append(p.warnings, unknownVariables(environ)...)
	if len(p.problems) > 0 {
		p.sortProblems()
		return c, &Error{Problems: p.problems}
	}
	return c, nil
}

// envErrors turns env's errors into problems.
func (p *parser) envErrors(err error) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		agg.Errors = []error{err}
	}
	for _, e := range agg.Errors {
		var fileErr env.LoadFileContentError
		var parseErr env.ParseError
		var refused valueErrors
		switch {
		case errors.As(e, &fileErr):
			p.add(strings.TrimPrefix(fileErr.Key, EnvPrefix), fileErr.Filename, "", "a readable file ("+errorReason(fileErr.Err)+")")
		case errors.As(e, &parseErr) && errors.As(parseErr.Err, &refused):
			name := variableOfField[parseErr.Name].Name
			p.addRefused(name, p.raw[name], refused)
		case errors.As(e, &parseErr):
			p.refuse(variableOfField[parseErr.Name].Name)
		default:
			p.add("", "", "", "a readable environment ("+e.Error()+")")
		}
	}
}

func (p *parser) add(name, value, where, expected string) {
	p.problems = append(p.problems, Problem{Variable: EnvPrefix + name, Value: value, Where: where, Expected: expected})
	p.bad[name] = true
}

// addRefused adds a parser's refusals for name, whose value is whole.
func (p *parser) addRefused(name, whole string, refused valueErrors) {
	for _, r := range refused.resolved(whole, formOf(name)) {
		p.add(name, r.Value, r.Where, r.Expected)
	}
}

// refuse adds the problem of a variable whose value is not of its form,
// quoting the value given, or the default (a secret redacted).
func (p *parser) refuse(name string) {
	value, given := p.raw[name]
	if !given {
		value = variableNamed[name].Default
	}
	if variableNamed[name].Secret {
		value = redactSecret(name, value)
	}
	p.add(name, value, "", formOf(name))
}

// check refuses name unless ok; a variable already refused is not again.
func (p *parser) check(name string, ok bool) {
	if !ok && !p.bad[name] {
		p.refuse(name)
	}
}

// sortProblems puts them in the order of the list, the *_FILE variables
// first (a file that cannot be read often explains the rest); one
// variable's problems keep their order.
func (p *parser) sortProblems() {
	rank := map[string]int{}
	for i, v := range variables {
		rank[EnvPrefix+v.Name] = i + 1
		if v.FileOf != "" {
			rank[EnvPrefix+v.Name] -= len(variables)
		}
	}
	sort.SliceStable(p.problems, func(i, j int) bool {
		return rank[p.problems[i].Variable] < rank[p.problems[j].Variable]
	})
}

// errorReason is the last part of an error message: "no such file or
// directory" rather than the whole "open /x: no such file or directory".
func errorReason(err error) string {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return execErr.Err.Error()
	}
	return err.Error()
}

// ParsePrefix accepts a prefix or a bare address (a /32 or /128), as every
// prefix list does. Host bits are cleared: 203.0.113.5/24 is 203.0.113.0/24.
func ParsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// parsePrefixList reads a comma-separated prefix list, items trimmed,
// refusing every bad item (an empty item once, for the whole value).
func parsePrefixList(s, where string) ([]netip.Prefix, valueErrors) {
	var out []netip.Prefix
	var refused valueErrors
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			if len(refused) == 0 || !refused[0].EmptyItem {
				refused = append(emptyItem(expectPrefixList, where), refused...)
			}
			continue
		}
		p, ok := ParsePrefix(item)
		if !ok {
			refused = append(refused, valueError{Value: item, Where: where, Expected: expectPrefix})
			continue
		}
		out = append(out, p)
	}
	return out, refused
}

// parseSeconds reads a Go duration in whole seconds; the range is the
// variable's (validate).
func parseSeconds(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d%time.Second != 0 {
		return 0, errors.New("not whole seconds")
	}
	return d, nil
}

func parseBool(s string) (any, error) {
	switch strings.ToLower(s) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return nil, errors.New("not a boolean")
}

// parseAction reads one item of ACTION (or of a hostgroup's action=).
func parseAction(s string) (routeros.Action, valueErrors) {
	a := routeros.Action(strings.ToLower(strings.TrimSpace(s)))
	switch a {
	case routeros.ActionNone, routeros.ActionFilter, routeros.ActionAddressList, routeros.ActionRawDrop, routeros.ActionBlackhole:
		return a, nil
	case "":
		return "", emptyItem("", "")
	}
	return "", valueErrors{{Value: strings.TrimSpace(s)}}
}

// parseDirection reads one item of BAN_DIRECTIONS.
func parseDirection(s string) (detect.Direction, valueErrors) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "in":
		return detect.In, nil
	case "out":
		return detect.Out, nil
	case "":
		return 0, emptyItem("", "")
	}
	return 0, valueErrors{{Value: strings.TrimSpace(s)}}
}

func parseLogFormat(s string) (any, error) {
	switch f := LogFormat(strings.ToLower(s)); f {
	case LogFormatText, LogFormatJSON:
		return f, nil
	}
	return nil, errors.New("unknown log format")
}
