package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/container"
)

const routerosScriptSynopsis = "routeros-script [-image FILE] [-container-address IP/LEN] [-router-address IP] [-root-dir DIR] [-ram-high SIZE] [-api-user NAME] [-api-port PORT] [-dns IP,...]"

// routerosScript prints the RouterOS setup script for running flowshield as
// a container on the router, filled in from the FLOWSHIELD_* environment:
// those variables become the container's envs. The router connection is
// the script's to decide (the API user it makes, on the veth), so
// FLOWSHIELD_ROUTEROS_ADDRESS and _USER need not be set.
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
	if len(problems) > 0 {
		for _, pr := range problems {
			fmt.Fprintln(c.stderr, pr)
		}
		return exitUsage
	}

	// The script decides the router connection; stand-ins keep the
	// checks that need one (an ACTION other than none) satisfied.
	environ := make(map[string]string, len(c.environ)+2)
	for k, v := range c.environ {
		environ[k] = v
	}
	if strings.TrimSpace(environ[appliance.EnvPrefix+"ROUTEROS_ADDRESS"]) == "" {
		environ[appliance.EnvPrefix+"ROUTEROS_ADDRESS"] = p.RouterIP.String()
	}
	if strings.TrimSpace(environ[appliance.EnvPrefix+"ROUTEROS_USER"]) == "" {
		user := p.APIUser
		if user == "" {
			user = container.DefaultAPIUser
		}
		environ[appliance.EnvPrefix+"ROUTEROS_USER"] = user
	}
	cfg, err := appliance.ConfigurationFromEnv(environ)
	if err != nil {
		fmt.Fprintln(c.stderr, err.Error())
		return exitFailure
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(c.stderr, "warning: "+w)
	}
	if p, err = containerParams(cfg, p); err != nil {
		fmt.Fprintln(c.stderr, err.Error())
		return exitFailure
	}
	script, err := container.Script(p)
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

// containerParams fills container.Params from the daemon's configuration: its
// settings that are not at their default become the container's envs
// (secrets with their values, *_FILE twins resolved, since the container
// cannot read the files), except those the script decides itself (the
// router connection and DATA_DIR). base gives what the configuration does
// not say (image file, addresses, root dir, memory, API user); the API
// password is the configuration's, or generated.
func containerParams(cfg appliance.Configuration, base container.Params) (container.Params, error) {
	p := base
	p.Actions = nil
	for _, a := range cfg.Actions {
		p.Actions = append(p.Actions, string(a))
	}
	p.BanDirections = nil
	for _, d := range cfg.BanDirections {
		p.BanDirections = append(p.BanDirections, d.String())
	}
	p.ListIn, p.ListOut = cfg.RouterOSListIn, cfg.RouterOSListOut
	p.Networks = cfg.Networks
	p.APITLS = cfg.RouterOSTLS
	if p.APITLS && p.APIPort == 8728 {
		p.APIPort = 8729
	}
	if p.APIUser == "" {
		p.APIUser = container.DefaultAPIUser
		if cfg.RouterOSUser != "" {
			p.APIUser = cfg.RouterOSUser
		}
	}
	p.APIPassword = cfg.RouterOSPassword
	if p.APIPassword == "" {
		pw, err := container.GeneratePassword(24)
		if err != nil {
			return p, fmt.Errorf("generating the API password: %w", err)
		}
		p.APIPassword, p.PasswordGenerated = pw, true
	}
	if cfg.NetflowListen == "" {
		return p, errors.New("FLOWSHIELD_NETFLOW_LISTEN is empty: the container needs its NetFlow/IPFIX listener, traffic-flow sends to it")
	}
	port, err := listenPort(cfg.NetflowListen)
	if err != nil {
		return p, fmt.Errorf("FLOWSHIELD_NETFLOW_LISTEN: %w", err)
	}
	p.NetflowPort = port
	p.HTTPPort = 0
	if cfg.HTTPListen != "" {
		if p.HTTPPort, err = listenPort(cfg.HTTPListen); err != nil {
			return p, fmt.Errorf("FLOWSHIELD_HTTP_LISTEN: %w", err)
		}
	}

	secrets := map[string]string{
		"ROUTEROS_PASSWORD": cfg.RouterOSPassword,
		"API_TOKEN":         cfg.APIToken,
		"WEBHOOK_URL":       cfg.WebhookURL,
		"SLACK_WEBHOOK_URL": cfg.SlackWebhookURL,
		"METRICS_PUSH_URL":  cfg.MetricsPushURL,
	}
	decidedHere := map[string]bool{
		"ROUTEROS_ADDRESS": true, "ROUTEROS_USER": true, "ROUTEROS_PASSWORD": true,
		"ROUTEROS_TLS": true, "DATA_DIR": true,
	}
	p.Env = nil
	for _, s := range cfg.Effective() {
		name := strings.TrimPrefix(s.Name, appliance.EnvPrefix)
		if s.Source == "default" || decidedHere[name] {
			continue
		}
		value := s.Value
		if v, ok := secrets[name]; ok {
			value = v
		}
		if name == "NOTIFY_SCRIPT" {
			p.Notes = append(p.Notes, "FLOWSHIELD_NOTIFY_SCRIPT="+value+" must exist inside the container (mount it under /data).")
		}
		p.Env = append(p.Env, container.Env{Key: s.Name, Value: value})
	}
	if cfg.RouterOSTLS {
		// The router's API-SSL certificate is normally self-signed.
		p.Env = append(p.Env, container.Env{Key: appliance.EnvPrefix + "ROUTEROS_TLS_INSECURE", Value: "true"})
	}
	return p, nil
}

// listenPort is the port of a host:port or :port listen address.
func listenPort(addr string) (uint16, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("%q has no port", addr)
	}
	n, err := strconv.ParseUint(addr[i+1:], 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q has no usable port", addr)
	}
	return uint16(n), nil
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
