package container

// A small RouterOS script reader for the tests: it tokenizes and parses the
// rendered script, checks every command against an explicit allow-list of
// menus, commands and parameters, follows [:parse] payloads (literal or held
// in a local), and checks that every add is guarded by a find on its own
// menu: ":if ([:len [/menu/find where ...]] = 0) do={ ... /menu/add ... }".

import (
	"fmt"
	"strconv"
	"strings"
)

type tokenKind int

const (
	tWord tokenKind = iota
	tString
	tOpen
	tClose
	tSep
)

type token struct {
	kind tokenKind
	text string // word text, bracket, or the decoded string
	line int
}

// tokenize splits RouterOS script. Strings are decoded; an unescaped $name
// inside a string (interpolation) becomes interpolated(name).
func tokenize(src string) ([]token, error) {
	var toks []token
	line := 1
	atStart := true
	var stack []byte
	closing := map[byte]byte{'{': '}', '[': ']', '(': ')'}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			toks = append(toks, token{tSep, "\n", line})
			line++
			i++
			atStart = true
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case c == '#' && atStart:
			for i < len(src) && src[i] != '\n' {
				i++
			}
			continue
		case c == ';':
			toks = append(toks, token{tSep, ";", line})
			i++
			atStart = true
			continue
		case c == '{' || c == '[' || c == '(':
			stack = append(stack, closing[c])
			toks = append(toks, token{tOpen, string(c), line})
			i++
			atStart = c == '{'
			continue
		case c == '}' || c == ']' || c == ')':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return nil, fmt.Errorf("line %d: unbalanced %q", line, c)
			}
			stack = stack[:len(stack)-1]
			toks = append(toks, token{tClose, string(c), line})
			i++
			atStart = false
			continue
		case c == '"':
			s, n, err := decodeString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			toks = append(toks, token{tString, s, line})
			i += n
			atStart = false
			continue
		case c == '\\':
			return nil, fmt.Errorf("line %d: stray backslash (line continuations are not used)", line)
		}
		j := i
		for j < len(src) && !strings.ContainsRune(" \t\r\n;{}[]()\"\\", rune(src[j])) {
			j++
		}
		toks = append(toks, token{tWord, src[i:j], line})
		i = j
		atStart = false
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q at end", stack[len(stack)-1])
	}
	return toks, nil
}

func interpolated(name string) string { return "VAR_" + name }

// decodeString reads a "..." literal at the start of s: its value and length.
func decodeString(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), i + 1, nil
		case '\n':
			return "", 0, fmt.Errorf("newline inside a string")
		case '$':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i+1 {
				return "", 0, fmt.Errorf("bare $ inside a string (escape it as \\$)")
			}
			b.WriteString(interpolated(s[i+1 : j]))
			i = j - 1
		case '?':
			return "", 0, fmt.Errorf("unescaped ? inside a string (a terminal paste opens the help)")
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("string ends in a backslash")
			}
			i++
			switch e := s[i]; e {
			case '"', '\\', '$', '?', '_':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				if i+1 < len(s) {
					if n, err := strconv.ParseUint(s[i:i+2], 16, 8); err == nil {
						b.WriteByte(byte(n))
						i++
						continue
					}
				}
				return "", 0, fmt.Errorf("unknown escape \\%c", e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

type itemKind int

const (
	iWord itemKind = iota
	iString
	iBlock // { ... }
	iSubst // [ ... ]
	iExpr  // ( ... )
)

type item struct {
	kind  itemKind
	text  string // word or decoded string
	stmts []stmt // block and subst: statements; expr: one statement of its items
	line  int
}

type stmt []item

// parseScript parses tokens into statements.
func parseScript(src string) ([]stmt, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	stmts, rest, err := parseStmts(toks, "")
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("line %d: unexpected %q", rest[0].line, rest[0].text)
	}
	return stmts, nil
}

func parseStmts(toks []token, until string) ([]stmt, []token, error) {
	var out []stmt
	var cur stmt
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	for len(toks) > 0 {
		t := toks[0]
		switch t.kind {
		case tSep:
			if until == ")" {
				toks = toks[1:] // an expression may span lines
				continue
			}
			flush()
			toks = toks[1:]
		case tClose:
			if t.text != until {
				return nil, nil, fmt.Errorf("line %d: unexpected %q", t.line, t.text)
			}
			flush()
			return out, toks[1:], nil
		case tOpen:
			kinds := map[string]itemKind{"{": iBlock, "[": iSubst, "(": iExpr}
			ends := map[string]string{"{": "}", "[": "]", "(": ")"}
			inner, rest, err := parseStmts(toks[1:], ends[t.text])
			if err != nil {
				return nil, nil, err
			}
			cur = append(cur, item{kind: kinds[t.text], stmts: inner, line: t.line})
			toks = rest
		case tString:
			cur = append(cur, item{kind: iString, text: t.text, line: t.line})
			toks = toks[1:]
		default:
			cur = append(cur, item{kind: iWord, text: t.text, line: t.line})
			toks = toks[1:]
		}
	}
	if until != "" {
		return nil, nil, fmt.Errorf("missing %q", until)
	}
	flush()
	return out, nil, nil
}

// menuSpec is what the script may do in one menu: per command, the
// parameters it may give (name=value), and for find the properties its
// where clause may test.
type menuSpec map[string][]string

// allowedMenus is the allow-list: every RouterOS menu, command and
// parameter the setup script may use. Keep it small and explicit.
var allowedMenus = map[string]menuSpec{
	"/system/resource":       {"get": {"version"}},
	"/system/package":        {"find": {"name", "disabled"}},
	"/system/device-mode":    {"get": {"container"}},
	"/file":                  {"find": {"name"}},
	"/disk":                  {"find": {"fs"}, "get": {"slot"}},
	"/user":                  {"find": {"name"}, "get": {"comment"}, "add": {"name", "group", "password", "address", "comment"}, "set": {"group", "password", "address"}},
	"/user/group":            {"find": {"name"}, "get": {"comment"}, "add": {"name", "policy", "comment"}, "set": {"policy"}},
	"/ip/service":            {"find": {"name"}, "get": {"port", "disabled", "address"}, "set": {"disabled"}},
	"/ip/dns":                {"get": {"servers", "dynamic-servers"}, "set": {"servers"}},
	"/interface/veth":        {"find": {"name"}, "add": {"name", "address", "gateway", "comment"}},
	"/interface":             {"find": {"name"}},
	"/interface/list":        {"find": {"name"}, "add": {"name", "comment"}},
	"/interface/list/member": {"find": {"list", "interface"}, "add": {"list", "interface", "comment"}},
	"/ip/address":            {"find": {"comment"}, "add": {"address", "interface", "comment"}},
	"/ip/firewall/nat":       {"find": {"comment"}, "add": {"chain", "action", "src-address", "comment"}},
	"/ip/firewall/filter":    {"find": {"comment", "chain", "dynamic"}, "add": {"chain", "action", "protocol", "src-address", "dst-port", "comment", "place-before"}},
	"/ip/firewall/raw": {"find": {"comment", "chain", "dynamic"},
		"add": {"chain", "action", "dst-address-list", "src-address-list", "protocol", "src-address", "dst-address", "dst-port", "comment", "place-before"},
		"set": {"dst-address-list", "src-address-list", "protocol", "src-address", "dst-address", "dst-port"}},
	"/ipv6/firewall/raw": {"find": {"comment", "chain", "dynamic"}, "add": {"chain", "action", "dst-address-list", "src-address-list", "comment", "place-before"},
		"set": {"dst-address-list", "src-address-list"}},
	"/ip/firewall/address-list": {"find": {"list", "address", "comment"}, "add": {"list", "address", "comment"}, "remove": {}},
	"/ip/traffic-flow":          {"set": {"enabled", "active-flow-timeout", "inactive-flow-timeout"}},
	"/ip/traffic-flow/target": {"find": {"dst-address", "port"}, "add": {"dst-address", "port", "src-address", "version"},
		"set": {"src-address", "version", "v9-template-refresh", "v9-template-timeout"}},
	"/container":        {"find": {"comment"}, "add": {"file", "interface", "root-dir", "envlist", "envlists", "mounts", "mountlists", "start-on-boot", "logging", "comment"}, "start": {}},
	"/container/config": {"set": {"tmpdir", "ram-high", "memory-high"}},
	"/container/envs":   {"find": {"list", "name", "key"}, "add": {"list", "name", "key", "value"}, "set": {"value"}},
	"/container/mounts": {"find": {"list", "name"}, "add": {"list", "name", "src", "dst"}},
}

// allowedScripting are the scripting commands the script may use.
var allowedScripting = map[string]bool{
	":local": true, ":set": true, ":if": true, ":do": true, ":while": true, ":put": true, ":error": true,
	":delay": true, ":return": true, ":len": true, ":pick": true, ":find": true, ":tonum": true, ":tostr": true, ":parse": true,
}

// scriptReport is what checking a script found.
type scriptReport struct {
	Commands map[string]int // "/menu add" -> count, payloads included
	Payloads int            // [:parse] payloads checked
	Problems []string
}

type checker struct {
	where  string // "" or "payload at line N: "
	report *scriptReport
	locals map[string]string // locals holding string literals (payloads)
}

func checkScript(src string) scriptReport {
	r := scriptReport{Commands: map[string]int{}}
	c := &checker{report: &r, locals: map[string]string{}}
	c.checkSource(src, "script")
	return r
}

func (c *checker) bad(line int, format string, args ...any) {
	c.report.Problems = append(c.report.Problems, c.where+fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

func (c *checker) checkSource(src, what string) {
	stmts, err := parseScript(src)
	if err != nil {
		c.report.Problems = append(c.report.Problems, c.where+what+": "+err.Error())
		return
	}
	for _, s := range stmts {
		c.checkStmt(s, "", nil)
	}
}

// checkStmt checks one statement; menu is the menu of the enclosing command
// (for relative [find ...]), guards the menus whose find guards it.
func (c *checker) checkStmt(s stmt, menu string, guards []guard) {
	if len(s) == 0 {
		return
	}
	head := s[0]
	switch {
	case head.kind == iBlock && len(s) == 1:
		for _, inner := range head.stmts {
			c.checkStmt(inner, menu, guards)
		}
	case head.kind == iSubst:
		// [[:parse ...]] as a statement, or [:len ...] etc. in expressions.
		for _, inner := range head.stmts {
			c.checkStmt(inner, menu, guards)
		}
		c.checkItems(s[1:], menu, guards)
	case head.kind == iWord && strings.HasPrefix(head.text, ":"):
		c.checkScripting(s, menu, guards)
	case head.kind == iWord && strings.HasPrefix(head.text, "/"):
		i := strings.LastIndexByte(head.text, '/')
		c.checkCommand(s, head.text[:i], head.text[i+1:], guards)
	case head.kind == iWord && (head.text == "find" || head.text == "get" || head.text == "set"):
		if menu == "" {
			c.bad(head.line, "relative %s outside a menu command", head.text)
			return
		}
		c.checkCommand(s, menu, head.text, guards)
	case head.kind == iExpr || head.kind == iString || head.kind == iWord && (strings.HasPrefix(head.text, "$") || head.text == "!"):
		// Operands inside an expression.
		c.checkItems(s, menu, guards)
	default:
		c.bad(head.line, "unknown command %q", head.text)
	}
}

// checkItems checks the blocks, substitutions and expressions among items.
func (c *checker) checkItems(items []item, menu string, guards []guard) {
	for _, it := range items {
		switch it.kind {
		case iBlock, iSubst, iExpr:
			for _, inner := range it.stmts {
				c.checkStmt(inner, menu, guards)
			}
		}
	}
}

func (c *checker) checkScripting(s stmt, menu string, guards []guard) {
	name := s[0].text
	line := s[0].line
	if !allowedScripting[name] {
		c.bad(line, "scripting command %s is not in the allow-list", name)
		return
	}
	switch name {
	case ":local", ":set":
		if len(s) < 2 || s[1].kind != iWord {
			c.bad(line, "%s without a name", name)
			return
		}
		if len(s) == 3 && s[2].kind == iString {
			c.locals[s[1].text] = s[2].text
		}
		c.checkItems(s[2:], menu, guards)
	case ":if":
		if len(s) < 3 || s[1].kind != iExpr || s[2].kind != iWord || s[2].text != "do=" || len(s) < 4 || s[3].kind != iBlock {
			c.bad(line, ":if without (condition) do={...}")
			return
		}
		c.checkItems(s[1:2], menu, guards)
		inner := append(append([]guard(nil), guards...), guardMenus(s[1])...)
		for _, st := range s[3].stmts {
			c.checkStmt(st, menu, inner)
		}
		rest := s[4:]
		if len(rest) > 0 {
			if len(rest) != 2 || rest[0].text != "else=" || rest[1].kind != iBlock {
				c.bad(line, ":if with something other than else={...} after do={...}")
				return
			}
			for _, st := range rest[1].stmts {
				c.checkStmt(st, menu, guards)
			}
		}
	case ":do":
		if len(s) < 2 || s[1].kind != iBlock {
			c.bad(line, ":do without a block")
			return
		}
		c.checkItems(s[1:2], menu, guards)
		if len(s) > 2 {
			if len(s) != 4 || s[2].text != "on-error=" || s[3].kind != iBlock {
				c.bad(line, ":do with something other than on-error={...}")
				return
			}
			c.checkItems(s[3:], menu, guards)
		}
	case ":while":
		if len(s) != 4 || s[1].kind != iExpr || s[2].text != "do=" || s[3].kind != iBlock {
			c.bad(line, ":while without (condition) do={...}")
			return
		}
		c.checkItems(s[1:], menu, guards)
	case ":parse":
		if len(s) != 2 {
			c.bad(line, ":parse takes one argument")
			return
		}
		var payload string
		switch arg := s[1]; {
		case arg.kind == iString:
			payload = arg.text
		case arg.kind == iWord && strings.HasPrefix(arg.text, "$"):
			p, ok := c.locals[arg.text[1:]]
			if !ok {
				c.bad(line, ":parse %s: no local holds a literal payload of that name", arg.text)
				return
			}
			payload = p
		default:
			c.bad(line, ":parse of something other than a literal or a local holding one")
			return
		}
		c.report.Payloads++
		// A payload compiles in a scope of its own: its adds need guards
		// of their own, and it sees no outer locals.
		sub := &checker{where: c.where + fmt.Sprintf("payload at line %d: ", line), report: c.report, locals: map[string]string{}}
		sub.checkSource(payload, "payload")
	default:
		c.checkItems(s[1:], menu, guards)
	}
}

// guard is a find that an add runs under: [:len [/menu/find where
// k=v ...]] = 0. The add must set every k to the same v, so that the next
// run finds what this one added.
type guard struct {
	menu  string
	conds map[string]string
}

// keyValues reads name=value arguments: a word k=v, or k= and a string.
func keyValues(items []item) map[string]string {
	kv := map[string]string{}
	for i := 0; i < len(items); i++ {
		it := items[i]
		if it.kind != iWord || !strings.Contains(it.text, "=") {
			continue
		}
		k, v, _ := strings.Cut(it.text, "=")
		if v == "" && i+1 < len(items) && items[i+1].kind == iString {
			v = items[i+1].text
			i++
		}
		kv[k] = v
	}
	return kv
}

// guardMenus finds in an :if condition the guards
// [:len [/menu/find where ...]] = 0.
func guardMenus(cond item) []guard {
	var menus []guard
	var walk func(items []item)
	walk = func(items []item) {
		for i, it := range items {
			if it.kind == iSubst && len(it.stmts) == 1 {
				st := it.stmts[0]
				if len(st) == 2 && st[0].text == ":len" && st[1].kind == iSubst && len(st[1].stmts) == 1 {
					find := st[1].stmts[0]
					if len(find) >= 2 && strings.HasSuffix(find[0].text, "/find") && find[1].text == "where" &&
						i+2 < len(items) && items[i+1].text == "=" && items[i+2].text == "0" {
						menus = append(menus, guard{menu: strings.TrimSuffix(find[0].text, "/find"), conds: keyValues(find[2:])})
					}
				}
			}
			if it.kind == iExpr {
				for _, st := range it.stmts {
					walk(st)
				}
			}
		}
	}
	for _, st := range cond.stmts {
		walk(st)
	}
	return menus
}

func (c *checker) checkCommand(s stmt, menu, verb string, guards []guard) {
	line := s[0].line
	spec, ok := allowedMenus[menu]
	if !ok {
		c.bad(line, "menu %s is not in the allow-list", menu)
		return
	}
	params, ok := spec[verb]
	if !ok {
		c.bad(line, "%s %s is not in the allow-list", menu, verb)
		return
	}
	c.report.Commands[menu+" "+verb]++
	if verb == "add" {
		guarded := false
		args := keyValues(s[1:])
		for _, g := range guards {
			if g.menu != menu {
				continue
			}
			guarded = true
			for k, v := range g.conds {
				if args[k] != v {
					c.bad(line, "%s add sets %s=%q but its guard finds %s=%q: a second run would add again", menu, k, args[k], k, v)
				}
			}
		}
		if !guarded {
			c.bad(line, "%s add is not guarded by :if ([:len [%s/find where ...]] = 0) do={...}", menu, menu)
		}
	}
	allowed := map[string]bool{}
	for _, p := range params {
		allowed[p] = true
	}
	args := s[1:]
	switch verb {
	case "find":
		if len(args) == 0 {
			return
		}
		if args[0].text != "where" {
			c.bad(line, "%s find without where", menu)
			return
		}
		for _, a := range args[1:] {
			if a.kind != iWord || a.text == "and" || a.text == "or" {
				continue
			}
			key, _, _ := strings.Cut(a.text, "=")
			key = strings.TrimSuffix(key, "!") // address!="..."
			if !allowed[key] {
				c.bad(line, "%s find where %s: property not in the allow-list", menu, key)
			}
		}
		return
	case "get":
		// get [id] property
		if len(args) == 0 {
			c.bad(line, "%s get without a property", menu)
			return
		}
		prop := args[len(args)-1]
		if prop.kind != iWord || !allowed[prop.text] {
			c.bad(line, "%s get %s: property not in the allow-list", menu, prop.text)
		}
		c.checkItems(args, menu, guards)
		return
	}
	// add, set, remove, start: [id] name=value ...
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a.kind == iSubst || a.kind == iWord && strings.HasPrefix(a.text, "$") {
			if i != 0 || verb == "add" {
				c.bad(line, "%s %s: unexpected positional argument", menu, verb)
			}
			c.checkItems(args[i:i+1], menu, guards)
			continue
		}
		if a.kind != iWord || !strings.Contains(a.text, "=") {
			c.bad(line, "%s %s: expected name=value, got %q", menu, verb, a.text)
			continue
		}
		key, value, _ := strings.Cut(a.text, "=")
		if !allowed[key] {
			c.bad(line, "%s %s %s=: parameter not in the allow-list", menu, verb, key)
		}
		if value == "" {
			// The value is the next item: a string, [..] or (..).
			if i+1 >= len(args) || args[i+1].kind == iWord || args[i+1].kind == iBlock {
				c.bad(line, "%s %s %s=: missing value", menu, verb, key)
				continue
			}
			c.checkItems(args[i+1:i+2], menu, guards)
			i++
		}
	}
}
