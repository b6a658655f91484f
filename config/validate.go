package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// Bounds beyond what the Go types give.
const (
	maxMbps           = 1_000_000_000 // 1 Pbps: keeps Mbps*1e6 bits far from overflowing uint64
	maxBanTime        = 8760 * time.Hour
	maxWindow         = 60 * time.Second
	maxMaxBans        = 1_000_000
	maxDecodeWorkers  = 256
	maxListNameLength = 63
)

const networksRequired = "the protected prefixes such as 203.0.113.0/24,2001:db8::/48, in " + EnvPrefix + "NETWORKS or, one a line, in the file named by " + EnvPrefix + "NETWORKS_FILE"

var graphitePrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validate checks, once env has parsed every variable, what no parser can
// on its own: the *_FILE twins, ranges, the forms of plain strings and the
// rules between variables. A variable that has a problem already gets no
// second one.
func (p *parser) validate(e *environment, requireNetworks bool) {
	c := &e.Configuration
	p.secretFiles(e)
	p.networks(c, e.Files.NetworksFile, requireNetworks)
	p.listen("NETFLOW_LISTEN", &c.NetflowListen)
	p.listen("SFLOW_LISTEN", &c.SFlowListen)
	p.listen("HTTP_LISTEN", &c.HTTPListen)
	if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		p.refuse("DATA_DIR")
	}
	p.check("SAMPLING_RATE", c.SamplingRate >= 1)
	p.check("WINDOW", c.Window >= time.Second && c.Window <= maxWindow)
	for _, k := range thresholdKeys {
		if k.mbps {
			p.check(k.variable, k.get(c.Thresholds.Detect()) <= maxMbps)
		}
	}
	p.check("LINK_MBPS", c.LinkMbps <= maxMbps)

	if !p.bad["ACTION"] {
		var ok bool
		if c.Actions, ok = normalActions(c.Actions); !ok {
			p.add("ACTION", p.raw["ACTION"], "", "none alone, not combined with other actions")
		}
	}
	p.check("ESCALATE_AFTER", c.EscalateAfter >= 0 && c.EscalateAfter <= maxBanTime)
	p.check("BAN_TIME", c.BanTime >= time.Second && c.BanTime <= maxBanTime)
	c.BanDirections = normalDirections(c.BanDirections)
	p.check("MAX_BANS", c.MaxBans >= 1 && c.MaxBans <= maxMaxBans)

	p.router(c)
	p.outputs(c)
	p.check("DECODE_WORKERS", c.DecodeWorkers >= 0 && c.DecodeWorkers <= maxDecodeWorkers)

	// Host groups last: they complete their thresholds from the global
	// ones, and their actions need a router as ACTION's do.
	global := c.Thresholds.Detect()
	for i := range c.HostGroups.List {
		c.HostGroups.List[i].complete(global)
	}
	if p.noRouter() {
		for _, g := range c.HostGroups.List {
			if len(g.Actions) > 0 && g.Actions[0] != routeros.ActionNone {
				p.add("HOSTGROUPS", "action="+joinActions(g.Actions), fmt.Sprintf("in group %q", g.Name),
					"action=none while "+EnvPrefix+"ROUTEROS_ADDRESS is empty (a ban needs a router)")
			}
		}
	}
	p.warnUnsafe(c)
}

// secretFiles puts each secret's *_FILE content (env has read it) in its
// variable, trailing newline trimmed (env keeps it); both set, or an empty
// file, is a problem.
func (p *parser) secretFiles(e *environment) {
	value := reflect.ValueOf(e).Elem()
	for _, v := range variables {
		if v.FileOf == "" || !variableNamed[v.FileOf].Secret {
			continue
		}
		path := p.raw[v.Name]
		if path == "" || p.bad[v.Name] {
			continue
		}
		if p.raw[v.FileOf] != "" {
			p.add(v.Name, path, "", "only one of "+EnvPrefix+v.FileOf+" and "+EnvPrefix+v.Name+" to be set")
			continue
		}
		content := strings.TrimRight(value.FieldByIndex(v.index).String(), "\r\n")
		if content == "" {
			p.add(v.Name, path, "", "a file holding the value of "+EnvPrefix+v.FileOf+", but it is empty")
			continue
		}
		value.FieldByIndex(variableNamed[v.FileOf].index).SetString(content)
		p.raw[v.FileOf] = content
		p.sources[v.FileOf] = "file " + path
	}
}

// networks applies NETWORKS_FILE (content is the file's) and the rule that
// one of NETWORKS and NETWORKS_FILE, not both, gives the prefixes.
func (p *parser) networks(c *Configuration, content string, required bool) {
	path := p.raw["NETWORKS_FILE"]
	switch {
	case strings.TrimSpace(path) == "":
		if required && len(c.Networks) == 0 && !p.bad["NETWORKS"] {
			p.add("NETWORKS", "", "", networksRequired)
		}
	case p.raw["NETWORKS"] != "":
		p.add("NETWORKS_FILE", path, "", "only one of "+EnvPrefix+"NETWORKS and "+EnvPrefix+"NETWORKS_FILE to be set")
	case !p.bad["NETWORKS_FILE"]:
		c.Networks = p.networksFile(path, content)
		p.sources["NETWORKS"] = "file " + path
	}
}

// networksFile reads FastNetMon's networks_list format: one prefix a line,
// # starts a comment, blank lines ignored.
func (p *parser) networksFile(path, content string) []netip.Prefix {
	var out []netip.Prefix
	for i, line := range strings.Split(content, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		prefix, ok := ParsePrefix(line)
		if !ok {
			p.add("NETWORKS_FILE", line, fmt.Sprintf("at %s line %d", path, i+1), expectPrefix+", one a line")
			continue
		}
		out = append(out, prefix)
	}
	if len(out) == 0 && !p.bad["NETWORKS_FILE"] {
		p.add("NETWORKS_FILE", path, "", "a file with at least one prefix, one a line, # comments")
	}
	return out
}

// listen checks a listen address; set but empty disables the listener
// (env gave the default: it cannot tell empty from unset).
func (p *parser) listen(name string, addr *string) {
	if value, set := p.raw[name]; set && strings.TrimSpace(value) == "" {
		*addr = ""
		return
	}
	if hostPortProblem(*addr, true) != "" {
		p.refuse(name)
		*addr = ""
	}
}

// hostPortProblem says what is wrong with a host:port, or "". A listener may
// leave the host empty and use port 0 (any free port).
func hostPortProblem(s string, listen bool) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err.Error()
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "bad port"
	}
	if !listen && (host == "" || n == 0) {
		return "missing host or port"
	}
	if host != "" && strings.ContainsAny(host, " \t/") {
		return "bad host"
	}
	return ""
}

// normalActions keeps the operator's order (with ESCALATE_AFTER it is the
// ladder's) without duplicates, the first of each kept; none must be alone
// (ok false otherwise, and no actions).
func normalActions(items []routeros.Action) (actions []routeros.Action, ok bool) {
	for _, a := range items {
		if !slices.Contains(actions, a) {
			actions = append(actions, a)
		}
	}
	if slices.Contains(actions, routeros.ActionNone) {
		if len(actions) > 1 {
			return nil, false
		}
		return []routeros.Action{routeros.ActionNone}, true
	}
	return actions, true
}

// normalDirections is in before out, without duplicates.
func normalDirections(items []detect.Direction) []detect.Direction {
	var out []detect.Direction
	for _, d := range []detect.Direction{detect.In, detect.Out} {
		if slices.Contains(items, d) {
			out = append(out, d)
		}
	}
	return out
}

func (p *parser) noRouter() bool { return strings.TrimSpace(p.raw["ROUTEROS_ADDRESS"]) == "" }

// router checks the RouterOS connection and that a ban has a router.
func (p *parser) router(c *Configuration) {
	c.RouterOSAddresses = p.routerAddresses(c.RouterOSAddresses, c.RouterOSTLS)
	if strings.ContainsFunc(c.RouterOSPassword, isControl) {
		p.refuse("ROUTEROS_PASSWORD")
	}
	if strings.ContainsFunc(c.RouterOSUser, isControl) {
		p.refuse("ROUTEROS_USER")
	}
	if len(c.RouterOSAddresses) > 0 && c.RouterOSUser == "" {
		p.add("ROUTEROS_USER", p.raw["ROUTEROS_USER"], "", "the RouterOS API user name, required when "+EnvPrefix+"ROUTEROS_ADDRESS is set")
	}
	if c.Bans() && p.noRouter() {
		p.add("ACTION", p.raw["ACTION"], "", "none while "+EnvPrefix+"ROUTEROS_ADDRESS is empty (a ban needs a router)")
	}
	if c.RouterOSTLSInsecure && !c.RouterOSTLS {
		p.warnings = append(p.warnings, EnvPrefix+"ROUTEROS_TLS_INSECURE=true has no effect without "+EnvPrefix+"ROUTEROS_TLS=true")
	}
	p.routerTLSVerification(c)
	for name, list := range map[string]*string{"ROUTEROS_LIST_IN": &c.RouterOSListIn, "ROUTEROS_LIST_OUT": &c.RouterOSListOut} {
		if len(*list) > maxListNameLength || strings.ContainsFunc(*list, isControl) || strings.Contains(*list, `"`) {
			p.refuse(name)
			*list = ""
		}
	}
	if c.RouterOSListIn != "" && c.RouterOSListIn == c.RouterOSListOut {
		p.add("ROUTEROS_LIST_OUT", p.raw["ROUTEROS_LIST_OUT"], "", "an address-list name different from "+EnvPrefix+"ROUTEROS_LIST_IN")
	}
}

// routerTLSVerification checks ROUTEROS_TLS_CA_FILE and
// ROUTEROS_TLS_FINGERPRINT: each verifies API-SSL, so each needs
// ROUTEROS_TLS and contradicts ROUTEROS_TLS_INSECURE.
func (p *parser) routerTLSVerification(c *Configuration) {
	for _, v := range []struct {
		name  string
		value *string
		check func(string) error
	}{
		{"ROUTEROS_TLS_CA_FILE", &c.RouterOSTLSCAFile, func(s string) error { _, err := routeros.ReadCAFile(s); return err }},
		{"ROUTEROS_TLS_FINGERPRINT", &c.RouterOSTLSFingerprint, func(s string) error { _, err := routeros.ParseFingerprint(s); return err }},
	} {
		if *v.value == "" {
			continue
		}
		switch {
		case !c.RouterOSTLS:
			p.add(v.name, *v.value, "", "unset while "+EnvPrefix+"ROUTEROS_TLS is false (it verifies API-SSL)")
		case c.RouterOSTLSInsecure:
			p.add(v.name, *v.value, "", "unset while "+EnvPrefix+"ROUTEROS_TLS_INSECURE is true (which skips the verification it asks for)")
		default:
			if err := v.check(*v.value); err != nil {
				p.add(v.name, *v.value, "", formOf(v.name)+" ("+errorReason(err)+")")
			}
		}
	}
}

// routerAddresses fills in the API port (8728, or 8729 with TLS) when an
// item is a bare host or address.
func (p *parser) routerAddresses(items []string, tls bool) []string {
	const name = "ROUTEROS_ADDRESS"
	port := "8728"
	if tls {
		port = "8729"
	}
	var out []string
	seen := map[string]bool{}
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			p.addRefused(name, p.raw[name], emptyItem("", ""))
			return nil
		}
		addr := item
		if a, err := netip.ParseAddr(strings.Trim(item, "[]")); err == nil {
			addr = net.JoinHostPort(a.String(), port)
		} else if !strings.Contains(item, ":") {
			addr = net.JoinHostPort(item, port)
		}
		if hostPortProblem(addr, false) != "" {
			p.add(name, item, "", formOf(name))
			continue
		}
		if seen[addr] {
			p.add(name, item, "", "each router once")
			continue
		}
		seen[addr] = true
		out = append(out, addr)
	}
	return out
}

// outputs checks the notifications, the metrics outputs and the API token.
func (p *parser) outputs(c *Configuration) {
	if c.NotifyScript != "" {
		if _, err := exec.LookPath(c.NotifyScript); err != nil {
			p.add("NOTIFY_SCRIPT", p.raw["NOTIFY_SCRIPT"], "", formOf("NOTIFY_SCRIPT")+" ("+errorReason(err)+")")
			c.NotifyScript = ""
		}
	}
	for name, u := range map[string]*string{"WEBHOOK_URL": &c.WebhookURL, "SLACK_WEBHOOK_URL": &c.SlackWebhookURL, "METRICS_PUSH_URL": &c.MetricsPushURL} {
		// URLs are secrets (webhook tokens live in their paths): refuse
		// prints the value redacted.
		*u = strings.TrimSpace(*u)
		if parsed, err := url.Parse(*u); *u != "" && (err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "") {
			p.refuse(name)
			*u = ""
		}
	}
	if c.GraphiteAddress != "" && hostPortProblem(c.GraphiteAddress, false) != "" {
		p.refuse("GRAPHITE_ADDRESS")
		c.GraphiteAddress = ""
	}
	p.check("GRAPHITE_PREFIX", graphitePrefixPattern.MatchString(c.GraphitePrefix))
	p.check("API_TOKEN", strings.TrimSpace(c.APIToken) == c.APIToken && !strings.ContainsFunc(c.APIToken, isControl))
}

const exportersUnsetWarning = EnvPrefix + "EXPORTERS is not set: flow datagrams are accepted from any source, and anyone who reaches the flow ports can claim a flood on a protected address; set it to the routers' export addresses"

// warnUnsafe warns of settings that load but leave a door open.
func (p *parser) warnUnsafe(c *Configuration) {
	if len(c.Exporters) == 0 && (c.NetflowListen != "" || c.SFlowListen != "") {
		// Anyone who reaches the flow ports could claim a flood.
		p.warnings = append(p.warnings, exportersUnsetWarning)
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
