package routeros

import (
	"strconv"
	"strings"
)

// What differs between RouterOS 6 and 7 in the API flowshield uses, per
// the RouterOS manual (wiki Manual:IP/Route, Manual:IPv6/Route) and
// help.mikrotik.com (IP Routing):
//   - IPv4 blackhole routes: type=blackhole on 6, blackhole=yes on 7
//     (RouterOS 6 traps "unknown parameter blackhole", RouterOS 7
//     "unknown parameter type").
//   - IPv6 routes on 6 have no blackhole type, only unreachable
//     ("there are no blackhole or prohibit routes, only unreachable"):
//     type=unreachable drops the traffic too, answering ICMPv6
//     unreachable. RouterOS 7 takes blackhole=yes for both families.
//
// The same on both (nothing to switch): address-list add, set and print
// with timeout= (whole seconds accepted; printed as "9m58s" or, for a
// day and more on 6, "1d00:00:00", which rosfmt reads), place-before on
// raw rules, .proplist and query words, comments, the post-6.43 login
// (go-routeros also does the older challenge login). The /ipv6 menus
// exist on 6 only with the ipv6 package enabled (a trap otherwise: no
// IPv6 objects, see printFamilies); /ip/firewall/raw exists since 6.36.

// Version-dependent words: ops write these placeholders and runLocked
// puts in what the router the command runs on takes, so a command built
// before a reconnect to an upgraded router is still right.
const (
	wordBlackholeSet   = "=\x00blackhole" // add: the route is a blackhole
	wordBlackholeQuery = "?\x00blackhole" // print: blackhole routes only
)

// dialect is the API syntax of one router, from the version it printed
// at login.
type dialect struct {
	version string // as printed: "6.49.18 (long-term)"; "" when unread
	legacy  bool   // RouterOS 6 (or older)
}

func newDialect(version string) dialect {
	major, _, _ := strings.Cut(strings.TrimSpace(version), ".")
	n, err := strconv.Atoi(major)
	return dialect{version: version, legacy: err == nil && n <= 6}
}

// rewrite puts the router's words in place of the placeholders; command
// is words[0], whose menu says the family.
func (d dialect) rewrite(words []string) []string {
	var out []string
	for i, w := range words {
		if w != wordBlackholeSet && w != wordBlackholeQuery {
			continue
		}
		if out == nil {
			out = append([]string(nil), words...)
		}
		kv := "blackhole=yes"
		if d.legacy {
			kv = "type=blackhole"
			if strings.HasPrefix(words[0], "/ipv6/") {
				kv = "type=unreachable"
			}
		}
		out[i] = w[:1] + kv
	}
	if out == nil {
		return words
	}
	return out
}
