package routeros

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/routeros/internal/rosfmt"

	"github.com/flowshield/flowshield/detect"
)

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "/ip"
	}
	return "/ipv6"
}

func menuOf(o Object) string {
	switch o.Action {
	case ActionAddressList:
		return family(o.Prefix) + "/firewall/address-list"
	case ActionRawDrop, ActionFilter:
		return family(o.Prefix) + "/firewall/raw"
	}
	return family(o.Prefix) + "/route"
}

// Proplists: only what parsing needs, so a big table costs little.
const (
	propsAddressList = "=.proplist=.id,list,address,timeout,comment,disabled"
	propsRaw         = "=.proplist=.id,chain,action,src-address,dst-address,protocol,src-port,dst-port,tcp-flags,fragment,packet-size,comment,packets,bytes,disabled"
	propsRoute       = "=.proplist=.id,dst-address,blackhole,type,comment,disabled"
)

func (r *Router) listOf(d detect.Direction) string {
	if d == detect.Out {
		return r.cfg.ListOut
	}
	return r.cfg.ListIn
}

// queries of a print returning flowshield's candidates of one action,
// filtered on the router so a big address list or a full BGP table is not
// sent whole.
func (r *Router) listQuery(a Action) []string {
	switch a {
	case ActionAddressList:
		if r.cfg.ListIn == r.cfg.ListOut {
			return []string{propsAddressList, "?list=" + r.cfg.ListIn}
		}
		return []string{propsAddressList, "?list=" + r.cfg.ListIn, "?list=" + r.cfg.ListOut, "?#|"}
	case ActionRawDrop, ActionFilter:
		return []string{propsRaw, "?chain=prerouting", "?action=drop"}
	}
	return []string{propsRoute, wordBlackholeQuery}
}

// List returns every object on the router whose comment starts with
// "flowshield", for all the actions, IPv4 and IPv6: one print per menu, a
// raw rule being a filter when it has matchers beyond its address, else a
// raw-drop. A router without IPv6 (a trap on the /ipv6 menus) contributes
// no IPv6 objects.
func (r *Router) List(ctx context.Context) ([]Object, error) {
	var out []Object
	for _, a := range []Action{ActionAddressList, ActionRawDrop, ActionBlackhole} {
		sub := menuOf(Object{Action: a, Prefix: netip.MustParsePrefix("::/0")})[len("/ipv6"):]
		err := r.printFamilies(ctx, sub, r.listQuery(a), func(menu string, m map[string]string) {
			o, ok, err := r.parse(a, m)
			if err != nil {
				r.unparsed.Add(1)
				r.log.Warn("unreadable flowshield object left alone", "menu", menu, "error", err)
				return
			}
			if ok {
				out = append(out, o)
			}
		})
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
	}
	return out, nil
}

// printFamilies prints sub ("/firewall/raw") under /ip, then /ipv6, and
// hands fn each item; a trap on the /ipv6 menu (a router without IPv6)
// gives no IPv6 items rather than an error.
func (r *Router) printFamilies(ctx context.Context, sub string, query []string, fn func(menu string, item map[string]string)) error {
	for _, fam := range []string{"/ip", "/ipv6"} {
		menu := fam + sub
		reply, err := r.call(ctx, true, append([]string{menu + "/print"}, query...)...)
		if err != nil {
			if fam == "/ipv6" && IsTrap(err) {
				r.log.Debug("no IPv6 menu", "menu", menu, "error", err)
				continue
			}
			return fmt.Errorf("%s: %w", menu, err)
		}
		for _, re := range reply.Re {
			fn(menu, re.Map)
		}
	}
	return nil
}

// parse turns a printed object into an Object; false when it is not
// flowshield's (or not of this action). For a raw rule, a of ActionRawDrop
// or ActionFilter is decided by its matchers.
func (r *Router) parse(a Action, m map[string]string) (Object, bool, error) {
	if !IsManaged(m["comment"]) {
		return Object{}, false, nil
	}
	o := Object{Action: a, ID: m[".id"], Comment: m["comment"]}
	o.Disabled, _ = rosfmt.ParseBool(m["disabled"])
	var addr string
	switch a {
	case ActionAddressList:
		addr = m["address"]
		o.List = m["list"]
		if o.List == r.cfg.ListOut && o.List != r.cfg.ListIn {
			o.Direction = detect.Out
		}
		if t := m["timeout"]; t != "" {
			d, err := rosfmt.ParseDuration(t)
			if err != nil {
				return Object{}, false, fmt.Errorf("%s: timeout: %w", o.ID, err)
			}
			o.Timeout = d
		}
	case ActionRawDrop, ActionFilter:
		if m["chain"] != "prerouting" || m["action"] != "drop" {
			return Object{}, false, nil
		}
		match, ok := matchOf(m)
		if !ok {
			return Object{}, false, fmt.Errorf("%s: raw rule matchers flowshield does not make", o.ID)
		}
		o.Action, o.Match = ActionRawDrop, match
		if !match.IsZero() {
			o.Action = ActionFilter
		}
		switch {
		case m["dst-address"] != "" && m["src-address"] == "":
			addr = m["dst-address"]
		case m["src-address"] != "" && m["dst-address"] == "":
			addr, o.Direction = m["src-address"], detect.Out
		default:
			return Object{}, false, fmt.Errorf("%s: raw rule needs exactly one of src-address and dst-address", o.ID)
		}
		o.Packets, _ = strconv.ParseUint(m["packets"], 10, 64)
		o.Bytes, _ = strconv.ParseUint(m["bytes"], 10, 64)
	case ActionBlackhole:
		addr = m["dst-address"]
	}
	p, err := parsePrefix(addr)
	if err != nil {
		return Object{}, false, fmt.Errorf("%s: %w", o.ID, err)
	}
	o.Prefix = p
	return o, true, nil
}

// timeoutWords is the address-list timeout in whole seconds, rounded up.
func timeoutWord(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return "=timeout=" + strconv.FormatInt(max(s, 1), 10) + "s"
}

// Add creates the object and returns its id. It is never retried by the
// client: when the connection breaks during an add, the router may or may
// not have applied it, so the caller lists (or Finds) before adding again.
// An address-list entry already present traps ("failure: already have such
// entry").
func (r *Router) Add(ctx context.Context, o Object) (string, error) {
	if err := o.validate(); err != nil {
		return "", fmt.Errorf("add %s: %w", o, err)
	}
	o.Comment = clean(o.Comment)
	menu := menuOf(o)
	words := []string{menu + "/add"}
	switch o.Action {
	case ActionAddressList:
		list := o.List
		if list == "" {
			list = r.listOf(o.Direction)
		}
		words = append(words, "=list="+list, "=address="+formatAddress(o.Prefix))
		if o.Timeout > 0 {
			words = append(words, timeoutWord(o.Timeout))
		}
	case ActionRawDrop, ActionFilter:
		words = append(words, "=chain=prerouting", "=action=drop")
		if o.Direction == detect.Out {
			words = append(words, "=src-address="+formatAddress(o.Prefix))
		} else {
			words = append(words, "=dst-address="+formatAddress(o.Prefix))
		}
		if o.Action == ActionFilter {
			for _, w := range o.Match.Words() {
				words = append(words, "="+w)
			}
		}
		first, err := r.firstRule(ctx, menu)
		if err != nil {
			return "", fmt.Errorf("add %s: %w", o, err)
		}
		if first != "" {
			words = append(words, "=place-before="+first)
		}
	case ActionBlackhole:
		words = append(words, "=dst-address="+o.Prefix.Masked().String(), wordBlackholeSet)
	}
	words = append(words, "=comment="+o.Comment)
	reply, err := r.call(ctx, false, words...)
	if err != nil {
		return "", fmt.Errorf("add %s: %w", o, err)
	}
	id := reply.Done.Map["ret"]
	if id == "" {
		return "", fmt.Errorf("add %s: the router returned no id", o)
	}
	return id, nil
}

// firstRule is the id of the first rule of the prerouting chain, "" if none.
func (r *Router) firstRule(ctx context.Context, menu string) (string, error) {
	reply, err := r.call(ctx, true, menu+"/print", "=.proplist=.id", "?chain=prerouting")
	if err != nil {
		return "", fmt.Errorf("find the first prerouting rule: %w", err)
	}
	if len(reply.Re) == 0 {
		return "", nil
	}
	return reply.Re[0].Map[".id"], nil
}

// Find looks the object up on the router by what it is (not by id):
// the flowshield object with the same Key, or ErrNotFound.
func (r *Router) Find(ctx context.Context, o Object) (Object, error) {
	menu := menuOf(o)
	words := []string{menu + "/print"}
	switch o.Action {
	case ActionAddressList:
		list := o.List
		if list == "" {
			list = r.listOf(o.Direction)
		}
		words = append(words, propsAddressList, "?list="+list)
		words = append(words, addressQuery("address", o.Prefix)...)
	case ActionRawDrop, ActionFilter:
		side := "dst-address"
		if o.Direction == detect.Out {
			side = "src-address"
		}
		words = append(words, propsRaw, "?chain=prerouting", "?action=drop")
		words = append(words, addressQuery(side, o.Prefix)...)
	case ActionBlackhole:
		words = append(words, r.listQuery(ActionBlackhole)...)
		words = append(words, "?dst-address="+o.Prefix.Masked().String())
	default:
		return Object{}, fmt.Errorf("find %s: %w", o, errBadObject)
	}
	reply, err := r.call(ctx, true, words...)
	if err != nil {
		return Object{}, fmt.Errorf("find %s: %w", o, err)
	}
	want := o
	if want.Action == ActionAddressList && want.List == "" {
		want.List = r.listOf(o.Direction)
	}
	for _, re := range reply.Re {
		got, ok, err := r.parse(o.Action, re.Map)
		if err == nil && ok && got.Key() == want.Key() {
			return got, nil
		}
	}
	return Object{}, fmt.Errorf("find %s: %w", o, ErrNotFound)
}

// addressQuery matches a host printed bare or with its length: which one a
// RouterOS version prints (IPv6 address lists in particular) varies.
func addressQuery(key string, p netip.Prefix) []string {
	p = p.Masked()
	if !p.IsSingleIP() {
		return []string{"?" + key + "=" + p.String()}
	}
	return []string{"?" + key + "=" + p.Addr().String(), "?" + key + "=" + p.String(), "?#|"}
}

// byID prints one object by id: it must exist and be flowshield's.
func (r *Router) byID(ctx context.Context, o Object, props string) (map[string]string, error) {
	if o.ID == "" {
		got, err := r.Find(ctx, o)
		if err != nil {
			return nil, err
		}
		o.ID = got.ID
	}
	reply, err := r.call(ctx, true, menuOf(o)+"/print", props, "?.id="+o.ID)
	if err != nil {
		return nil, err
	}
	if len(reply.Re) == 0 {
		return nil, fmt.Errorf("%s: %w", o, ErrNotFound)
	}
	m := reply.Re[0].Map
	if !IsManaged(m["comment"]) {
		return nil, fmt.Errorf("%s: %w (comment %q)", o, ErrNotManaged, m["comment"])
	}
	return m, nil
}

// Remove deletes the object, by ID when set, else found by what it is.
// It checks first that the id still holds a flowshield object (ids can be
// reused after a reboot). An object already gone is not an error.
func (r *Router) Remove(ctx context.Context, o Object) error {
	m, err := r.byID(ctx, o, "=.proplist=.id,comment")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", o, err)
	}
	if _, err := r.call(ctx, true, menuOf(o)+"/remove", "=.id="+m[".id"]); err != nil && !isNoSuchItem(err) {
		return fmt.Errorf("remove %s: %w", o, err)
	}
	return nil
}

// SetTimeout sets an address-list entry's timeout= (whole seconds), as
// when a ban is extended. ErrNotFound when the entry is gone (expired):
// add it again.
func (r *Router) SetTimeout(ctx context.Context, o Object, d time.Duration) error {
	if o.Action != ActionAddressList {
		return fmt.Errorf("set timeout of %s: only address-list entries have one", o)
	}
	m, err := r.byID(ctx, o, "=.proplist=.id,comment")
	if err != nil {
		return fmt.Errorf("set timeout of %s: %w", o, err)
	}
	if _, err := r.call(ctx, true, menuOf(o)+"/set", "=.id="+m[".id"], timeoutWord(d)); err != nil {
		if isNoSuchItem(err) {
			err = ErrNotFound
		}
		return fmt.Errorf("set timeout of %s: %w", o, err)
	}
	return nil
}

// Counters reads what a ban has dropped, which flows no longer show
// (traffic-flow exports after raw prerouting), to decide whether the
// attack goes on: a raw-drop or filter rule's packet and byte counters, or for an
// address-list entry the counters of the raw drop rules that drop its list
// (the setup script's; shared by every entry of the list, so the caller
// attributes them only while the list holds one ban). Blackhole routes
// count nothing.
func (r *Router) Counters(ctx context.Context, o Object) (packets, bytes uint64, err error) {
	switch o.Action {
	case ActionRawDrop, ActionFilter:
	case ActionAddressList:
		return r.listDropCounters(ctx, o)
	default:
		return 0, 0, fmt.Errorf("counters of %s: a blackhole route counts nothing", o)
	}
	m, err := r.byID(ctx, o, "=.proplist=.id,comment,packets,bytes")
	if err != nil {
		return 0, 0, fmt.Errorf("counters of %s: %w", o, err)
	}
	packets, err1 := strconv.ParseUint(m["packets"], 10, 64)
	bytes, err2 := strconv.ParseUint(m["bytes"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("counters of %s: %w", o, err)
	}
	return packets, bytes, nil
}

// listDropCounters sums the counters of the enabled raw drop rules in
// prerouting that match o's list on the side of its direction.
func (r *Router) listDropCounters(ctx context.Context, o Object) (packets, bytes uint64, err error) {
	match := "dst-address-list"
	if o.Direction == detect.Out {
		match = "src-address-list"
	}
	list := r.listOf(o.Direction)
	reply, err := r.call(ctx, true, family(o.Prefix)+"/firewall/raw/print",
		"=.proplist=.id,packets,bytes,disabled", "?chain=prerouting", "?action=drop", "?"+match+"="+list)
	if err != nil {
		return 0, 0, fmt.Errorf("counters of the drop rules of list %s: %w", list, err)
	}
	found := false
	for _, re := range reply.Re {
		m := re.Map
		if m["disabled"] == "true" || m["disabled"] == "yes" {
			continue
		}
		p, err1 := strconv.ParseUint(m["packets"], 10, 64)
		b, err2 := strconv.ParseUint(m["bytes"], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("counters of the drop rules of list %s: %w", list, err)
		}
		packets, bytes, found = packets+p, bytes+b, true
	}
	if !found {
		return 0, 0, fmt.Errorf("counters of the drop rules of list %s: %w (run the setup script)", list, ErrNotFound)
	}
	return packets, bytes, nil
}

// Resource is /system/resource: version, board-name, architecture-name,
// uptime and the rest.
func (r *Router) Resource(ctx context.Context) (map[string]string, error) {
	reply, err := r.call(ctx, true, "/system/resource/print")
	if err != nil {
		return nil, fmt.Errorf("read /system/resource: %w", err)
	}
	if len(reply.Re) == 0 {
		return nil, errors.New("read /system/resource: empty reply")
	}
	return reply.Re[0].Map, nil
}

// Permissions is the policies granted to the API user's group ("read",
// "write", "api", ...), without the denied ("!ftp") ones.
func (r *Router) Permissions(ctx context.Context) ([]string, error) {
	reply, err := r.call(ctx, true, "/user/print", "=.proplist=name,group", "?name="+r.cfg.User)
	if err != nil {
		return nil, fmt.Errorf("read user %q: %w", r.cfg.User, err)
	}
	if len(reply.Re) == 0 {
		return nil, fmt.Errorf("read user %q: not in /user", r.cfg.User)
	}
	group := reply.Re[0].Map["group"]
	reply, err = r.call(ctx, true, "/user/group/print", "=.proplist=name,policy", "?name="+group)
	if err != nil {
		return nil, fmt.Errorf("read group %q: %w", group, err)
	}
	if len(reply.Re) == 0 {
		return nil, fmt.Errorf("read group %q: not in /user/group", group)
	}
	var out []string
	for _, p := range strings.Split(reply.Re[0].Map["policy"], ",") {
		if p != "" && !strings.HasPrefix(p, "!") {
			out = append(out, p)
		}
	}
	return out, nil
}

// RequiredPolicies is what the API user's group needs for these actions.
func RequiredPolicies(actions []Action) []string {
	if len(actions) == 0 {
		return []string{"api", "read"}
	}
	return []string{"api", "read", "write"}
}
