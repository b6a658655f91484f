package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/container"
	"github.com/flowshield/flowshield/routeros"
)

const routerosScriptSynopsis = "routeros-script [-image FILE] [-container-address IP/LEN] [-router-address IP] [-root-dir DIR] [-ram-high SIZE] [-api-user NAME] [-api-port PORT] [-dns IP,...] [-admin PREFIX,...] [-uplinks IFACE,...]"

// routerosScript prints the RouterOS setup script for running flowshield as
// a container on the router, filled in from the FLOWSHIELD_* environment
// (container.ScriptFromEnvironment) and the flags.
func (c cli) routerosScript(args []string) int {
	def := container.DefaultParams()
	fs := flag.NewFlagSet("routeros-script", flag.ContinueOnError)
	image := fs.String("image", def.ImageFile, "the image tar uploaded to the router's Files (may start with a disk, usb1/...)")
	containerAddr := fs.String("container-address", def.ContainerPrefix.String(), "the container's address on its veth, with the network length")
	routerAddr := fs.String("router-address", def.RouterIP.String(), "the router's address on the container's veth")
	rootDir := fs.String("root-dir", "", "where the container's files go (root, data, tmp under it); default: the first ext4/btrfs disk, else internal storage")
	ramHigh := fs.String("ram-high", "256MiB", "the container's memory ceiling (GOMEMLIMIT is set to 90% of it): bytes or with K/M/G, KiB/MiB/GiB")
	apiUser := fs.String("api-user", "", "the API user the script makes (default: FLOWSHIELD_ROUTEROS_USER, else flowshield)")
	apiPort := fs.Uint("api-port", 0, "the port of the router's api (api-ssl with FLOWSHIELD_ROUTEROS_TLS) service (default 8728, 8729 with TLS)")
	dns := fs.String("dns", "9.9.9.9,1.1.1.1", "DNS servers set on the router if it has none (a container does not start without one)")
	admin := fs.String("admin", "", "IPv4 prefixes put in the address list "+container.AdminList+", the only sources outside the router that reach the web UI and API (default: none; you may add your own entries to the list)")
	uplinks := fs.String("uplinks", "", "the uplink interfaces put in the interface list "+routeros.UplinkList+", whose receive counters show a saturated uplink (LINK_MBPS) and blind flows, such as ether1,sfp-sfpplus1 (default: none; the script makes the list and says how to add them)")
	if code, ok := c.parseFlags(fs, args, routerosScriptSynopsis); !ok {
		return code
	}

	var problems []string
	p := def
	p.Version = appliance.BuildInfo().Version
	p.ImageFile, p.RootDir, p.APIUser = *image, *rootDir, *apiUser
	var err error
	if p.ContainerPrefix, err = netip.ParsePrefix(*containerAddr); err != nil {
		problems = append(problems, fmt.Sprintf("-container-address %q: expected an address with its network length, such as 172.17.0.2/24", *containerAddr))
	}
	if p.RouterIP, err = netip.ParseAddr(*routerAddr); err != nil {
		problems = append(problems, fmt.Sprintf("-router-address %q: expected an IPv4 address such as 172.17.0.1", *routerAddr))
	}
	if p.RAMHigh, err = parseSize(*ramHigh); err != nil {
		problems = append(problems, fmt.Sprintf("-ram-high %q: %v", *ramHigh, err))
	}
	if *apiPort > 65535 {
		problems = append(problems, fmt.Sprintf("-api-port %d: expected 1 to 65535", *apiPort))
	} else if *apiPort != 0 {
		p.APIPort = uint16(*apiPort)
	}
	p.DNSServers = nil
	for _, s := range strings.Split(*dns, ",") {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			problems = append(problems, fmt.Sprintf("-dns %q: expected a comma-separated list of IP addresses", *dns))
			break
		}
		p.DNSServers = append(p.DNSServers, a)
	}
	if *admin != "" {
		for _, s := range strings.Split(*admin, ",") {
			s = strings.TrimSpace(s)
			n, err := netip.ParsePrefix(s)
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				n, err = netip.PrefixFrom(a, a.BitLen()), nil
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("-admin %q: expected a comma-separated list of IPv4 prefixes or addresses, such as 192.168.88.0/24,10.0.0.5", *admin))
				break
			}
			p.AdminNetworks = append(p.AdminNetworks, n.Masked())
		}
	}
	for _, u := range strings.Split(*uplinks, ",") {
		if u = strings.TrimSpace(u); u != "" {
			p.Uplinks = append(p.Uplinks, u)
		}
	}
	if len(problems) > 0 {
		for _, pr := range problems {
			fmt.Fprintln(c.stderr, pr)
		}
		return exitUsage
	}

	script, warnings, err := container.ScriptFromEnvironment(c.environ, p)
	for _, w := range warnings {
		fmt.Fprintln(c.stderr, "warning: "+w)
	}
	if err != nil {
		fmt.Fprintln(c.stderr, err.Error())
		return exitFailure
	}
	if _, err := fmt.Fprint(c.stdout, script); err != nil {
		fmt.Fprintln(c.stderr, "writing the script:", err)
		return exitFailure
	}
	return exitOK
}

// parseSize reads 268435456, 256M, 256MiB, 1G, 1GiB (K, M, G are binary).
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 || n > 1<<50/mult {
		return 0, fmt.Errorf("expected a size such as 256MiB, 1G or 268435456")
	}
	return n * mult, nil
}
