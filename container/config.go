package container

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/config"
)

// decidedByScript are the variables the setup script sets itself (Script):
// the router connection it makes, the data directory it mounts and the
// exporters (Params.Exporters).
var decidedByScript = map[string]bool{
	"ROUTEROS_ADDRESS": true, "ROUTEROS_USER": true, "ROUTEROS_PASSWORD": true,
	"ROUTEROS_TLS": true, "DATA_DIR": true, "EXPORTERS": true,
}

// ScriptFromEnvironment is `flowshield routeros-script`: it loads the
// daemon's configuration from environ and fills the setup script in, with
// that configuration as the container's envs; base gives what the
// configuration does not say (image file, addresses, root dir, memory, API
// user, admin networks). The router connection is the script's to decide,
// so FLOWSHIELD_ROUTEROS_ADDRESS and _USER need not be set; an unset
// FLOWSHIELD_EXPORTERS is the router's address on the veth, where its flow
// exports come from. The warnings are the configuration's, and one when
// FLOWSHIELD_EXPORTERS leaves that address out; on a problem the script is
// "".
func ScriptFromEnvironment(environ map[string]string, base Params) (script string, warnings []string, err error) {
	// Stand-ins keep the checks that need a router connection (an ACTION
	// other than none) satisfied, and EXPORTERS is the script's default:
	// the configuration's warning that it is unset is not the container's.
	env := make(map[string]string, len(environ)+3)
	for k, v := range environ {
		env[k] = v
	}
	if strings.TrimSpace(env[config.EnvPrefix+"ROUTEROS_ADDRESS"]) == "" {
		env[config.EnvPrefix+"ROUTEROS_ADDRESS"] = base.RouterIP.String()
	}
	if strings.TrimSpace(env[config.EnvPrefix+"ROUTEROS_USER"]) == "" {
		user := base.APIUser
		if user == "" {
			user = DefaultAPIUser
		}
		env[config.EnvPrefix+"ROUTEROS_USER"] = user
	}
	if strings.TrimSpace(env[config.EnvPrefix+"EXPORTERS"]) == "" && base.RouterIP.IsValid() {
		env[config.EnvPrefix+"EXPORTERS"] = base.RouterIP.String()
	}
	cfg, err := config.FromEnv(env)
	if err != nil {
		return "", nil, err
	}
	warnings = cfg.Warnings
	p, err := paramsFrom(cfg, base)
	if err != nil {
		return "", warnings, err
	}
	if w := exportersMissRouter(p); w != "" {
		warnings = append(slices.Clone(warnings), w)
	}
	script, err = Script(p)
	return script, warnings, err
}

// paramsFrom fills Params from the daemon's configuration: its settings
// that are not at their default become the container's envs (secrets with
// their values, *_FILE twins resolved, since the container cannot read the
// files), except those the script decides itself. The API password is the
// configuration's, or generated.
func paramsFrom(cfg config.Configuration, base Params) (Params, error) {
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
	p.Exporters = cfg.Exporters
	p.APITLS = cfg.RouterOSTLS
	if p.APITLS && p.APIPort == 8728 {
		p.APIPort = 8729
	}
	if p.APIUser == "" {
		p.APIUser = DefaultAPIUser
		if cfg.RouterOSUser != "" {
			p.APIUser = cfg.RouterOSUser
		}
	}
	p.APIPassword = cfg.RouterOSPassword
	if p.APIPassword == "" {
		pw, err := GeneratePassword(24)
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
	p.SFlowPort = 0
	if cfg.SFlowListen != "" {
		if p.SFlowPort, err = listenPort(cfg.SFlowListen); err != nil {
			return p, fmt.Errorf("FLOWSHIELD_SFLOW_LISTEN: %w", err)
		}
	}
	p.HTTPPort = 0
	if cfg.HTTPListen != "" {
		if p.HTTPPort, err = listenPort(cfg.HTTPListen); err != nil {
			return p, fmt.Errorf("FLOWSHIELD_HTTP_LISTEN: %w", err)
		}
	}

	p.Env = nil
	for _, s := range cfg.Environment() {
		name := strings.TrimPrefix(s.Name, config.EnvPrefix)
		if decidedByScript[name] {
			continue
		}
		if name == "NOTIFY_SCRIPT" {
			p.Notes = append(p.Notes, s.Name+"="+s.Value+" must exist inside the container (mount it under /data).")
		}
		p.Env = append(p.Env, Env{Key: s.Name, Value: s.Value})
	}
	if cfg.RouterOSTLS {
		// The router's API-SSL certificate is normally self-signed.
		p.Env = append(p.Env, Env{Key: config.EnvPrefix + "ROUTEROS_TLS_INSECURE", Value: "true"})
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
