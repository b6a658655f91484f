// Command dispatch: what each command does to the menus under the user's
// policies, and how print renders and filters (the API's query words).

package routerostest

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// execute acts on a command and writes its reply into rep; false means the
// connection ends after the reply.
func (s *Server) execute(c *conn, req request, rep *reply) bool {
	switch req.command {
	case "/login":
		if req.attrs["name"] == s.cfg.User && req.attrs["password"] == s.cfg.Password {
			c.user = req.attrs["name"]
			s.logins.Add(1)
			rep.sentence("!done")
		} else {
			rep.trap("invalid user name or password (6)")
		}
		return true
	case "/quit":
		rep.sentence("!fatal", "session terminated on request")
		return false
	case "/cancel":
		rep.sentence("!done")
		return true
	}
	i := strings.LastIndexByte(req.command, '/')
	menu, verb := req.command[:i], req.command[i+1:]

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.expireLocked()
	policy := s.policyLocked(c.user)
	if !policy["api"] {
		rep.trap("not enough permissions (9)")
		return true
	}

	if menu == MenuResource {
		if verb != "print" && verb != "getall" {
			rep.trap("no such command")
			return true
		}
		s.printResource(req, rep, now)
		return true
	}
	if st := s.settings[menu]; st != nil {
		s.executeSettings(st, verb, req, rep, policy)
		return true
	}
	t := s.tables[menu]
	if t == nil {
		dir := menu[strings.LastIndexByte(menu, '/')+1:]
		rep.sentence("!trap", "=category=0", "=message=no such command or directory ("+dir+")")
		rep.trap("no such command prefix")
		return true
	}
	needs := "write"
	if verb == "print" || verb == "getall" {
		needs = "read"
	}
	if !policy[needs] || (t.schema.kind == kindUser || t.schema.kind == kindGroup) && needs == "write" && !policy["policy"] {
		rep.trap("not enough permissions (9)")
		return true
	}
	if t.schema.fixed && (verb == "add" || verb == "remove") {
		rep.trap("no such command")
		return true
	}
	switch verb {
	case "print", "getall":
		s.print(t, req, rep, now)
	case "add":
		props := map[string]string{}
		for k, v := range req.attrs {
			if k != "place-before" {
				props[k] = v
			}
		}
		id, err := s.addLocked(menu, props, req.attrs["place-before"])
		if err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done", "=ret="+id)
	case "remove":
		if err := s.removeLocked(t, idList(req.attrs)); err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done")
	case "set":
		if err := s.setLocked(t, idList(req.attrs), req.attrs, now); err != nil {
			rep.trap(err.Error())
			return true
		}
		rep.sentence("!done")
	default:
		rep.trap("no such command")
	}
	return true
}

// executeSettings answers print and set on a settings menu.
func (s *Server) executeSettings(st *settings, verb string, req request, rep *reply, policy map[string]bool) {
	switch verb {
	case "print", "getall":
		if !policy["read"] {
			rep.trap("not enough permissions (9)")
			return
		}
		rep.sentence(renderWords("!re", st.props, proplist(req.attrs))...)
		rep.sentence("!done")
	case "set":
		if !policy["write"] {
			rep.trap("not enough permissions (9)")
			return
		}
		if err := st.set(req.attrs); err != nil {
			rep.trap(err.Error())
			return
		}
		rep.sentence("!done")
	default:
		rep.trap("no such command")
	}
}

func idList(attrs map[string]string) []string {
	v, ok := attrs[".id"]
	if !ok {
		v = attrs["numbers"]
	}
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (s *Server) policyLocked(user string) map[string]bool {
	var group string
	for _, o := range s.tables[MenuUser].objs {
		if o.props["name"] == user {
			group = o.props["group"]
		}
	}
	out := map[string]bool{}
	for _, o := range s.tables[MenuUserGroup].objs {
		if o.props["name"] == group {
			for _, p := range strings.Split(o.props["policy"], ",") {
				if p != "" && p[0] != '!' {
					out[p] = true
				}
			}
		}
	}
	return out
}

func (s *Server) printResource(req request, rep *reply, now time.Time) {
	m := map[string]string{
		"uptime":            rosfmt.FormatDuration(now.Sub(s.boot)),
		"version":           s.cfg.Version,
		"build-time":        "2025-03-11 11:59:04",
		"free-memory":       "912345088",
		"total-memory":      "1073741824",
		"cpu":               "QEMU",
		"cpu-count":         "2",
		"cpu-frequency":     "2400",
		"cpu-load":          "1",
		"free-hdd-space":    "85000000",
		"total-hdd-space":   "134217728",
		"architecture-name": s.cfg.Architecture,
		"board-name":        s.cfg.BoardName,
		"platform":          "MikroTik",
	}
	rep.sentence(renderWords("!re", m, proplist(req.attrs))...)
	rep.sentence("!done")
}

func proplist(attrs map[string]string) map[string]bool {
	v, ok := attrs[".proplist"]
	if !ok {
		return nil
	}
	return set(strings.Split(v, ",")...)
}

func renderWords(word string, m map[string]string, only map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if only == nil || only[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := []string{word}
	for _, k := range keys {
		out = append(out, "="+k+"="+m[k])
	}
	return out
}

func (s *Server) print(t *table, req request, rep *reply, now time.Time) {
	only := proplist(req.attrs)
	n := 0
	var sentences [][]string
	for _, o := range t.objs {
		m := t.render(o, now)
		ok, err := matchQuery(t.schema, m, req.queries)
		if err != nil {
			rep.trap(err.Error())
			return
		}
		if !ok {
			continue
		}
		n++
		sentences = append(sentences, renderWords("!re", m, only))
	}
	if _, ok := req.attrs["count-only"]; ok {
		rep.sentence("!done", "=ret="+strconv.Itoa(n))
		return
	}
	for _, w := range sentences {
		rep.sentence(w...)
	}
	if n == 0 && s.empty {
		rep.sentence("!empty")
	}
	rep.sentence("!done")
}

// matchQuery evaluates the API query words on a printed object: each word
// pushes a result on a stack, "?#" words combine them, and the object
// matches when every value left on the stack is true.
func matchQuery(sc *schema, m map[string]string, queries []string) (bool, error) {
	var st []bool
	pop := func() bool {
		if len(st) == 0 {
			return false
		}
		v := st[len(st)-1]
		st = st[:len(st)-1]
		return v
	}
	for _, q := range queries {
		switch {
		case strings.HasPrefix(q, "#"):
			for _, op := range q[1:] {
				switch op {
				case '!':
					st = append(st, !pop())
				case '&':
					a, b := pop(), pop()
					st = append(st, a && b)
				case '|':
					a, b := pop(), pop()
					st = append(st, a || b)
				case '.':
					v := pop()
					st = append(st, v, v)
				default:
					return false, fmt.Errorf("unknown query operation %q", op)
				}
			}
		case strings.HasPrefix(q, "-"):
			_, has := m[q[1:]]
			st = append(st, !has)
		case strings.HasPrefix(q, "<") || strings.HasPrefix(q, ">"):
			k, v, _ := strings.Cut(q[1:], "=")
			a, b := m[k], v
			var less bool
			if x, err1 := strconv.ParseInt(a, 10, 64); err1 == nil {
				if y, err2 := strconv.ParseInt(b, 10, 64); err2 == nil {
					if q[0] == '<' {
						less = x < y
					} else {
						less = x > y
					}
					st = append(st, less)
					continue
				}
			}
			if q[0] == '<' {
				st = append(st, a < b)
			} else {
				st = append(st, a > b)
			}
		default:
			k, v, hasValue := strings.Cut(q, "=")
			got, has := m[k]
			if !hasValue {
				st = append(st, has)
				continue
			}
			if sc.bools[k] {
				want, err := rosfmt.ParseBool(v)
				if err == nil {
					gb, _ := rosfmt.ParseBool(got)
					st = append(st, has && gb == want)
					continue
				}
			}
			st = append(st, has && got == v)
		}
	}
	for _, v := range st {
		if !v {
			return false, nil
		}
	}
	return true, nil
}
