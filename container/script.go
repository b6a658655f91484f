// Package container is the RouterOS side of running flowshield as a RouterOS
// container: the .rsc setup script (rsc/*.rsc, embedded) that
// `flowshield routeros-script` prints filled in from the environment.
//
// The script makes the veth and its addresses, points traffic-flow at the
// container, lets the container reach the API, makes an API user with only
// the policies the actions need, the raw drop rules that use the address
// lists, and the container itself with its envs, a /data mount and a memory
// ceiling. It keeps outsiders away from the container's ports: raw rules let
// only the exporters of FLOWSHIELD_EXPORTERS reach its flow ports and only
// the admin address list its web UI and API (the router's own exports never
// pass prerouting). It is idempotent: every add is guarded by a find on the
// same menu.
// Everything it makes carries a comment starting with CommentPrefix, which
// the daemon's reconciler (comments "flowshield <attack-id> <type>" and
// "flowshield manual ...") never takes for a ban.
package container

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/flowshield/flowshield/config"
)

// CommentPrefix starts the comment of every object the setup script makes.
// It must never be "flowshield" followed by a space: those are bans.
const CommentPrefix = "flowshield-setup"

// The address lists the setup script keeps: AdminList holds the sources
// that may reach the container's web UI and API, ExportersList the other
// exporters (not this router) that may send it flows. The script manages
// the entries it made (comment CommentPrefix + ": admin" or ": exporter")
// and never touches the others, which the operator may add by hand.
const (
	AdminList     = "flowshield-admin"
	ExportersList = "flowshield-exporters"
)

// Params is what the setup script is filled in with.
type Params struct {
	// Version is flowshield's version, written in the script's header.
	Version string
	// ImageFile is the image tar uploaded to the router's Files
	// (flowshield-arm64.tar), possibly with a disk prefix (usb1/...).
	ImageFile string
	// ContainerPrefix is the container's address on the veth with the
	// veth network's length (172.17.0.2/24); RouterIP the router's side.
	ContainerPrefix netip.Prefix
	RouterIP        netip.Addr
	// RootDir is where the container's files go (root, data, tmp under
	// it); empty: an ext4/btrfs disk from /disk if the router has one,
	// else internal storage.
	RootDir string
	// RAMHigh is the container memory ceiling in bytes; GOMEMLIMIT is set
	// to 90% of it.
	RAMHigh uint64
	// APIUser and APIPassword are the RouterOS API user the script makes
	// for the container. PasswordGenerated prints the password in the
	// script's header.
	APIUser           string
	APIPassword       string
	PasswordGenerated bool
	// APITLS uses the api-ssl service; APIPort is the service's port.
	APITLS  bool
	APIPort uint16
	// DNSServers are set in /ip/dns when the router has none.
	DNSServers []netip.Addr
	// NetflowPort is the container's NetFlow/IPFIX port (traffic-flow
	// target), SFlowPort its sFlow port (0: off); outsiders other than
	// Exporters are dropped on their way to both. HTTPPort is its web UI
	// and API port (0: off), reachable from outside the router only from
	// AdminList.
	NetflowPort uint16
	SFlowPort   uint16
	HTTPPort    uint16
	// Exporters are the sources the container takes flows from
	// (FLOWSHIELD_EXPORTERS, written in its envs); empty: RouterIP, where
	// this router's exports come from (the target's src-address). Their
	// IPv4 prefixes but RouterIP go in ExportersList, so that the raw rule
	// lets those other exporters reach the flow ports.
	Exporters []netip.Prefix
	// AdminNetworks are put in AdminList (IPv4: the container has no IPv6
	// address). Empty: the list holds only what the operator adds, and
	// until then only the router itself reaches the web UI.
	AdminNetworks []netip.Prefix
	// Actions (FLOWSHIELD_ACTION: none, address-list, raw-drop,
	// blackhole, filter), BanDirections (in, out), ListIn and ListOut are the
	// daemon's: they decide the group's policies and the raw drop rules.
	Actions       []string
	BanDirections []string
	ListIn        string
	ListOut       string
	// Networks are the protected prefixes: IPv6 ones add the IPv6 drop
	// rules, and they appear in the RTBH example.
	Networks []netip.Prefix
	// Env is the daemon's configuration as container envs (FLOWSHIELD_*
	// and any other). Script adds the router connection, DATA_DIR and
	// GOMEMLIMIT itself.
	Env []Env
	// Notes are extra lines for the script's header comment.
	Notes []string
	// Uplinks are the interfaces the script puts in the interface list
	// routeros.UplinkList (it makes the list either way), whose receive
	// counters the daemon reads.
	Uplinks []string
}

// Env is one container environment variable.
type Env struct {
	Key, Value string
}

// Defaults of the values `flowshield routeros-script` takes from flags.
const (
	DefaultImageFile       = "flowshield-arm64.tar"
	DefaultContainerPrefix = "172.17.0.2/24"
	DefaultRouterIP        = "172.17.0.1"
	DefaultAPIUser         = "flowshield"
	DefaultRAMHigh         = 256 << 20
)

// DefaultParams are the parameters of an empty configuration.
func DefaultParams() Params {
	return Params{
		Version:         "dev",
		ImageFile:       DefaultImageFile,
		ContainerPrefix: netip.MustParsePrefix(DefaultContainerPrefix),
		RouterIP:        netip.MustParseAddr(DefaultRouterIP),
		RAMHigh:         DefaultRAMHigh,
		APIUser:         DefaultAPIUser,
		APIPort:         8728,
		DNSServers:      []netip.Addr{netip.MustParseAddr("9.9.9.9"), netip.MustParseAddr("1.1.1.1")},
		NetflowPort:     2055,
		SFlowPort:       6343,
		HTTPPort:        8080,
		Actions:         []string{"none"},
		BanDirections:   []string{"in"},
		ListIn:          "flowshield-in",
		ListOut:         "flowshield-out",
	}
}

// GeneratePassword is a random API password of n letters and digits (no
// look-alikes), for when the configuration has none.
func GeneratePassword(n int) (string, error) {
	return generatePassword(n)
}

func generatePassword(n int) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// scriptData is what the template sees: Params checked and derived.
type scriptData struct {
	Params
	ScriptFile                     string
	Name, Veth, Group, EnvList     string
	MountList, APIService, Policy  string
	RouterPrefix, ContainerNetwork string
	ContainerIP, ContainerHost     string
	FlowVersion                    string
	DNSServers                     string
	Envs                           []Env
	DropRules                      []dropRule
	// Lists are the address lists the script keeps (ExportersList, and
	// AdminList when the web UI is on).
	Lists     []managedList
	Blackhole bool
	RTBHRules []string
}

// dropRule is a raw prerouting drop rule, found by its comment: Match are
// its matchers as RouterOS words, set again on every run.
type dropRule struct {
	Menu, Why, Match, Comment string
}

// managedList is an address list whose entries with Comment are the
// script's: it removes those not in Entries and adds the missing ones.
type managedList struct {
	Name, Why, Comment string
	Entries            []string
}

// Script fills the setup script in.
func Script(p Params) (string, error) {
	d, err := prepare(p)
	if err != nil {
		return "", err
	}
	out, err := renderScript(d)
	if err != nil {
		return "", fmt.Errorf("filling the setup script in: %w", err)
	}
	return strings.TrimRight(out, "\n") + "\n", nil
}

func prepare(p Params) (scriptData, error) {
	d := scriptData{
		Params:     p,
		ScriptFile: "flowshield-setup.rsc",
		Name:       "flowshield",
		Veth:       "veth-flowshield",
		Group:      "flowshield",
		EnvList:    "flowshield",
		MountList:  "flowshield-data",
		APIService: "api",
	}
	if p.APITLS {
		d.APIService = "api-ssl"
	}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if !p.ContainerPrefix.IsValid() || !p.ContainerPrefix.Addr().Is4() || p.ContainerPrefix.Bits() < 8 || p.ContainerPrefix.Bits() > 30 {
		bad("container address %v: expected an IPv4 address with its network length, such as 172.17.0.2/24", p.ContainerPrefix)
	} else if !p.RouterIP.IsValid() || !p.RouterIP.Is4() || !p.ContainerPrefix.Masked().Contains(p.RouterIP) || p.RouterIP == p.ContainerPrefix.Addr() {
		bad("router address %v: expected another IPv4 address in %v", p.RouterIP, p.ContainerPrefix.Masked())
	} else {
		d.ContainerIP = p.ContainerPrefix.Addr().String()
		d.ContainerHost = d.ContainerIP + "/32"
		d.ContainerNetwork = p.ContainerPrefix.Masked().String()
		d.RouterPrefix = netip.PrefixFrom(p.RouterIP, p.ContainerPrefix.Bits()).String()
	}
	if p.ImageFile == "" || strings.ContainsFunc(p.ImageFile, unsafeFileRune) {
		bad("image file %q: expected a file name such as flowshield-arm64.tar (letters, digits, . _ - /)", p.ImageFile)
	}
	if strings.ContainsFunc(p.RootDir, unsafeFileRune) || strings.HasPrefix(p.RootDir, "/") || strings.HasSuffix(p.RootDir, "/") {
		bad("root dir %q: expected a relative path such as usb1/flowshield (letters, digits, . _ - /)", p.RootDir)
	}
	if p.APIUser == "" || strings.ContainsFunc(p.APIUser, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) {
		bad("API user %q: expected letters, digits, . _ -", p.APIUser)
	}
	for _, u := range p.Uplinks {
		if u == "" || strings.ContainsFunc(u, func(r rune) bool {
			return !(strings.ContainsRune("-_.+/@:", r) || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
		}) {
			bad("uplink interface %q: expected an interface name such as ether1 or sfp-sfpplus1 (letters, digits, - _ . + / @ :)", u)
		}
	}
	if p.APIUser == "admin" {
		bad("API user admin: the script restricts its user to the container's address; choose a user of its own")
	}
	if p.APIPassword == "" {
		bad("API password: empty")
	}
	if p.RAMHigh < 64<<20 {
		bad("ram-high %d bytes: expected at least 64 MiB", p.RAMHigh)
	}
	if p.APIPort == 0 || p.NetflowPort == 0 {
		bad("API and NetFlow ports must not be 0")
	}
	if len(p.DNSServers) == 0 {
		bad("DNS servers: none")
	}
	dns := make([]string, len(p.DNSServers))
	for i, a := range p.DNSServers {
		dns[i] = a.String()
	}
	d.DNSServers = strings.Join(dns, ",")
	if p.Version == "" {
		d.Version = "dev"
	}
	if w := exportersMissRouter(p); w != "" {
		d.Notes = append(slices.Clone(p.Notes), "Warning: "+w+".")
	}

	// The version: IPFIX carries IPv6 flows too, and its sampling fields
	// are standard.
	d.FlowVersion = "IPFIX"

	policy := []string{"api", "read"}
	var addressList bool
	for _, a := range p.Actions {
		switch a {
		case "none", "raw-drop", "filter":
		case "address-list":
			addressList = true
		case "blackhole":
			d.Blackhole = true
		default:
			bad("action %q: expected none, address-list, raw-drop, blackhole or filter", a)
		}
		if a != "none" && len(policy) == 2 {
			policy = append(policy, "write")
		}
	}
	d.Policy = strings.Join(policy, ",")

	var v4, v6 bool
	for _, n := range p.Networks {
		if n.Addr().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	if !v4 && !v6 {
		v4 = true
	}
	if addressList {
		for _, fam := range []struct {
			on         bool
			menu, name string
		}{{v4, "/ip/firewall/raw", "IPv4"}, {v6, "/ipv6/firewall/raw", "IPv6"}} {
			if !fam.on {
				continue
			}
			for _, dir := range p.BanDirections {
				match, list := "dst-address-list", p.ListIn
				switch dir {
				case "in":
				case "out":
					match, list = "src-address-list", p.ListOut
				default:
					bad("ban direction %q: expected in or out", dir)
					continue
				}
				if list == "" {
					bad("address-list name for direction %s: empty", dir)
				}
				d.DropRules = append(d.DropRules, dropRule{Menu: fam.menu, Match: match + "=" + quote(list),
					Why:     fmt.Sprintf("Drop what flowshield puts in the address list %s (%s).", list, fam.name),
					Comment: CommentPrefix + ": drop " + dir + " " + list})
			}
		}
	}
	problems = append(problems, guardContainer(p, &d)...)
	if d.Blackhole {
		for _, n := range p.Networks {
			host := 32
			if n.Addr().Is6() {
				host = 128
			}
			d.RTBHRules = append(d.RTBHRules, fmt.Sprintf("if (dst in %s && dst-len == %d) { set bgp-communities 65535:666; accept }", n, host))
		}
	}

	// The container's envs: the configuration's, then the ones decided here.
	seen := map[string]bool{}
	add := func(k, v string) {
		if seen[k] {
			return
		}
		seen[k] = true
		d.Envs = append(d.Envs, Env{Key: k, Value: v})
	}
	routerAddr := fmt.Sprintf("%s:%d", p.RouterIP, p.APIPort)
	add(config.EnvPrefix+"ROUTEROS_ADDRESS", routerAddr)
	add(config.EnvPrefix+"ROUTEROS_USER", p.APIUser)
	add(config.EnvPrefix+"ROUTEROS_PASSWORD", p.APIPassword)
	add(config.EnvPrefix+"ROUTEROS_TLS", strconv.FormatBool(p.APITLS))
	add(config.EnvPrefix+"DATA_DIR", "/data")
	add(config.EnvPrefix+"EXPORTERS", exportersEnv(p))
	add("GOMEMLIMIT", fmt.Sprintf("%dMiB", p.RAMHigh*9/10>>20))
	for _, e := range p.Env {
		if e.Key == "" || strings.ContainsFunc(e.Key, func(r rune) bool {
			return !(r == '_' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
		}) {
			bad("env name %q: expected letters, digits and _", e.Key)
			continue
		}
		if strings.ContainsFunc(e.Value, unicode.IsControl) {
			bad("env %s: the value has a control character (a newline?)", e.Key)
			continue
		}
		add(e.Key, e.Value)
	}
	for _, s := range []string{p.APIPassword, p.ListIn, p.ListOut} {
		if strings.ContainsFunc(s, unicode.IsControl) {
			bad("a value has a control character")
		}
	}
	if len(problems) > 0 {
		return d, errors.New("routeros-script: " + strings.Join(problems, "; "))
	}
	return d, nil
}

// guardContainer adds to d what keeps outsiders away from the container's
// ports (IPv4 only: the container has no IPv6 address): the address lists
// and the raw rules that use them. Every packet of this router's own flow
// exports leaves through the output chain and never passes prerouting, so
// the rules see none of it; they see everything else that comes in for the
// container. The problems are returned.
func guardContainer(p Params, d *scriptData) []string {
	var problems []string
	for _, n := range p.AdminNetworks {
		if !n.IsValid() || !n.Addr().Is4() {
			problems = append(problems, fmt.Sprintf("admin network %v: expected an IPv4 prefix (the container has only an IPv4 address)", n))
		}
	}
	if p.HTTPPort == 0 && len(p.AdminNetworks) > 0 {
		problems = append(problems, "admin networks: the web UI and API are off (FLOWSHIELD_HTTP_LISTEN is empty)")
	}
	if d.ContainerIP == "" {
		return problems // the container address is already refused
	}

	exporters := managedList{Name: ExportersList, Comment: CommentPrefix + ": exporter",
		Why: "Other exporters that may send the container flows (FLOWSHIELD_EXPORTERS but this router)."}
	for _, e := range p.Exporters {
		// This router's own address needs no entry: its exports never
		// pass prerouting, and from outside it is forged.
		if e.Addr().Is4() && e != netip.PrefixFrom(p.RouterIP, 32) {
			exporters.Entries = append(exporters.Entries, listAddress(e))
		}
	}
	d.Lists = append(d.Lists, exporters)
	ports := strconv.Itoa(int(p.NetflowPort))
	if p.SFlowPort != 0 && p.SFlowPort != p.NetflowPort {
		ports += "," + strconv.Itoa(int(p.SFlowPort))
	}
	d.DropRules = append(d.DropRules, dropRule{Menu: "/ip/firewall/raw",
		Why: fmt.Sprintf("Flows (UDP %s) to the container from outside the router: only from %s.", ports, ExportersList),
		Match: fmt.Sprintf("protocol=udp dst-address=%s dst-port=%s src-address-list=%s", d.ContainerIP, ports,
			quote("!"+ExportersList)),
		Comment: CommentPrefix + ": flows to the container only from " + ExportersList})

	if p.HTTPPort != 0 {
		admin := managedList{Name: AdminList, Comment: CommentPrefix + ": admin",
			Why: "Who may reach the container's web UI and API (routeros-script -admin, and yours)."}
		for _, n := range p.AdminNetworks {
			if n.IsValid() && n.Addr().Is4() {
				admin.Entries = append(admin.Entries, listAddress(n))
			}
		}
		d.Lists = append(d.Lists, admin)
		d.DropRules = append(d.DropRules, dropRule{Menu: "/ip/firewall/raw",
			Why: fmt.Sprintf("The web UI and API (TCP %d) from outside the router: only from %s.", p.HTTPPort, AdminList),
			Match: fmt.Sprintf("protocol=tcp dst-address=%s dst-port=%d src-address-list=%s", d.ContainerIP, p.HTTPPort,
				quote("!"+AdminList)),
			Comment: CommentPrefix + ": HTTP to the container only from " + AdminList})
	}

	// An exporter prefix may cover the router's own address, which arrives
	// in prerouting only forged.
	d.DropRules = append(d.DropRules, dropRule{Menu: "/ip/firewall/raw",
		Why:     fmt.Sprintf("The router's own address (%s) arriving from outside is forged.", p.RouterIP),
		Match:   fmt.Sprintf("src-address=%s dst-address=%s", p.RouterIP, d.ContainerIP),
		Comment: CommentPrefix + ": forged router address to the container"})
	return problems
}

// exportersEnv is FLOWSHIELD_EXPORTERS for the container: p.Exporters, or
// the router's address on the veth.
func exportersEnv(p Params) string {
	if len(p.Exporters) == 0 {
		return netip.PrefixFrom(p.RouterIP, p.RouterIP.BitLen()).String()
	}
	s := make([]string, len(p.Exporters))
	for i, e := range p.Exporters {
		s[i] = e.String()
	}
	return strings.Join(s, ",")
}

// exportersMissRouter is a warning when p.Exporters, set, leave out the
// router's address on the veth: the container would then refuse the very
// flows the script points at it. "" when they do not.
func exportersMissRouter(p Params) string {
	if len(p.Exporters) == 0 || !p.RouterIP.IsValid() {
		return ""
	}
	for _, e := range p.Exporters {
		if e.Contains(p.RouterIP) {
			return ""
		}
	}
	return fmt.Sprintf("%sEXPORTERS=%s leaves out %s, where this router's flows come from: the container will refuse them; add %s to it",
		config.EnvPrefix, exportersEnv(p), p.RouterIP, p.RouterIP)
}

// listAddress is a prefix as RouterOS prints an address-list entry (a
// bare IPv4 host), so that the script's find matches what it added.
func listAddress(p netip.Prefix) string {
	p = p.Masked()
	if p.IsSingleIP() && p.Addr().Is4() {
		return p.Addr().String()
	}
	return p.String()
}

func unsafeFileRune(r rune) bool {
	return !(r == '-' || r == '_' || r == '.' || r == '/' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
}

// sentinel marks, in a [:parse] payload, where the outer script's variable
// is interpolated (the payload runs in a scope of its own and cannot see
// the outer locals).
const sentinel = "\uE000"

// The script's text is in rsc/ (see rsc/README.md), filled in by renderer.fill
// with plain string replacement: text/template would make the linker keep
// every exported method of every reachable type (reflect's MethodByName),
// 1.7 MB of the binary.
//
//go:embed rsc/*.rsc rsc/payload/*.rsc
var rscFiles embed.FS

// fragment is the text of rsc/<name>.rsc without its final newline.
func fragment(name string) (string, error) {
	b, err := rscFiles.ReadFile("rsc/" + name + ".rsc")
	if err != nil {
		return "", fmt.Errorf("reading the script fragment %s: %w", name, err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// values are the placeholders' values, by name.
type values map[string]string

// with is v and the name, value pairs kv.
func (v values) with(kv ...string) values {
	w := maps.Clone(v)
	for i := 0; i+1 < len(kv); i += 2 {
		w[kv[i]] = kv[i+1]
	}
	return w
}
