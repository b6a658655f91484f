// The menus' objects: add, set and remove with RouterOS's checks, and
// address-list timeouts running out on the emulator's clock.

package routerostest

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"
)

// settings is a menu of one object without id, such as /ip/traffic-flow.
type settings struct {
	schema *schema
	props  map[string]string
}

// set applies the writable properties, all or none.
func (st *settings) set(attrs map[string]string) error {
	changes, err := st.schema.changes(attrs)
	if err != nil {
		return err
	}
	maps.Copy(st.props, changes)
	return nil
}

// changes is what a set writes: every property but the ids, checked and
// normalized, or the first error.
func (sc *schema) changes(attrs map[string]string) (map[string]string, error) {
	changes := map[string]string{}
	for k, v := range attrs {
		if k == ".id" || k == "numbers" {
			continue
		}
		if !sc.writable[k] {
			return nil, fmt.Errorf("unknown parameter %s", k)
		}
		nv, err := sc.normalize(k, v)
		if err != nil {
			return nil, err
		}
		changes[k] = nv
	}
	return changes, nil
}

// expireLocked removes address-list entries whose timeout ran out and
// returns the clock's now.
func (s *Server) expireLocked() time.Time {
	now := s.cfg.Now()
	for _, t := range s.tables {
		if t.schema.kind != kindAddressList {
			continue
		}
		kept := t.objs[:0]
		for _, o := range t.objs {
			if o.expires.IsZero() || now.Before(o.expires) {
				kept = append(kept, o)
			}
		}
		t.objs = kept
	}
	return now
}

func (s *Server) addLocked(menu string, props map[string]string, placeBefore string) (string, error) {
	s.changedLocked()
	t := s.tables[menu]
	sc := t.schema
	o := &object{props: map[string]string{}, created: s.cfg.Now()}
	for k, v := range sc.defaults {
		o.props[k] = v
	}
	for k, v := range props {
		if !sc.writable[k] && !sc.seedable[k] {
			return "", fmt.Errorf("unknown parameter %s", k)
		}
		nv, err := sc.normalize(k, v)
		if err != nil {
			return "", err
		}
		o.props[k] = nv
	}
	for _, k := range sc.required {
		if o.props[k] == "" {
			return "", fmt.Errorf("failure: missing value(s) of argument(s) %s", k)
		}
	}
	if err := s.applyTimeout(o, sc); err != nil {
		return "", err
	}
	if err := t.checkDuplicate(o); err != nil {
		return "", err
	}
	pos := len(t.objs)
	if placeBefore != "" {
		if sc.kind != kindRaw {
			return "", fmt.Errorf("unknown parameter place-before")
		}
		i, _ := t.find(placeBefore)
		if i < 0 {
			return "", errors.New("no such item")
		}
		pos = i
	}
	o.id = t.nextID
	t.nextID++
	t.objs = append(t.objs, nil)
	copy(t.objs[pos+1:], t.objs[pos:])
	t.objs[pos] = o
	return formatID(o.id), nil
}

// applyTimeout turns the timeout property into an expiry on the clock.
func (s *Server) applyTimeout(o *object, sc *schema) error {
	v, ok := o.props["timeout"]
	if !ok || sc.kind != kindAddressList {
		return nil
	}
	d, err := rosfmt.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("invalid value for argument timeout")
	}
	if d <= 0 {
		o.expires = time.Time{}
		delete(o.props, "timeout")
		return nil
	}
	o.expires = s.cfg.Now().Add(d)
	return nil
}

func (t *table) checkDuplicate(o *object) error {
	switch t.schema.kind {
	case kindAddressList:
		for _, x := range t.objs {
			if x != o && x.props["list"] == o.props["list"] && x.props["address"] == o.props["address"] {
				return errors.New("failure: already have such entry")
			}
		}
	case kindUser, kindGroup:
		for _, x := range t.objs {
			if x != o && x.props["name"] == o.props["name"] {
				return errors.New("failure: already have such name")
			}
		}
	}
	return nil
}

func (s *Server) removeLocked(t *table, ids []string) error {
	s.changedLocked()
	if len(ids) == 0 {
		return errors.New("no such item")
	}
	for _, id := range ids {
		if i, _ := t.find(id); i < 0 {
			return errors.New("no such item")
		}
	}
	for _, id := range ids {
		i, _ := t.find(id)
		t.objs = append(t.objs[:i], t.objs[i+1:]...)
	}
	return nil
}

func (s *Server) setLocked(t *table, ids []string, attrs map[string]string, now time.Time) error {
	s.changedLocked()
	if len(ids) == 0 {
		return errors.New("no such item")
	}
	var objs []*object
	for _, id := range ids {
		_, o := t.find(id)
		if o == nil {
			return errors.New("no such item")
		}
		objs = append(objs, o)
	}
	changes, err := t.schema.changes(attrs)
	if err != nil {
		return err
	}
	for _, o := range objs {
		old := o.props
		o.props = make(map[string]string, len(old))
		for k, v := range old {
			o.props[k] = v
		}
		for k, v := range changes {
			o.props[k] = v
		}
		if err := t.checkDuplicate(o); err != nil {
			o.props = old
			return err
		}
		if _, ok := changes["timeout"]; ok {
			if err := s.applyTimeout(o, t.schema); err != nil {
				o.props = old
				return err
			}
		}
	}
	return nil
}

// migrate converts an object's properties to another version's schema sc,
// as an upgrade (or downgrade) between RouterOS 6 and 7 does: blackhole
// routes and traffic-flow targets change form, timers are printed anew,
// what the version lacks goes and what it adds takes its default.
func migrate(sc *schema, props map[string]string) map[string]string {
	out := maps.Clone(props)
	switch sc.kind {
	case kindRoute:
		if sc.legacy {
			if out["blackhole"] == "true" {
				out["type"] = "blackhole"
				if sc.ipv6 {
					out["type"] = "unreachable"
				}
			}
		} else if t := out["type"]; t != "" && t != "unicast" {
			out["blackhole"] = "true"
		}
	case kindFlowTarget:
		if sc.legacy && out["dst-address"] != "" {
			out["address"] = net.JoinHostPort(out["dst-address"], cmp.Or(out["port"], "2055"))
		} else if ap, err := netip.ParseAddrPort(out["address"]); !sc.legacy && err == nil {
			out["dst-address"], out["port"] = ap.Addr().String(), strconv.Itoa(int(ap.Port()))
		}
	}
	for k, v := range out {
		if !sc.writable[k] && !sc.seedable[k] && !sc.bools[k] {
			if _, ok := sc.defaults[k]; !ok {
				delete(out, k)
				continue
			}
		}
		if (sc.kind == kindSettings || sc.kind == kindFlowTarget) && strings.HasSuffix(k, "-timeout") {
			if d, err := rosfmt.ParseDuration(v); err == nil {
				out[k] = formatFlowDuration(d, sc.legacy)
			}
		}
	}
	for k, v := range sc.defaults {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}
