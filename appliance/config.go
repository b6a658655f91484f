// Package appliance wires flowshield's components into the running daemon.
// This file holds its Configuration: every FLOWSHIELD_* environment variable
// of the contract (../shared/CONTRACT.md), read with caarlos0/env and checked
// here, so that a bad value stops start-up with one line per problem naming
// the variable, the value and the form that was expected.
package appliance

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/flowshield/flowshield/detect"
)

// EnvPrefix starts the name of every environment variable flowshield reads.
const EnvPrefix = "FLOWSHIELD_"

// Action is what a ban does on the router.
type Action string

const (
	ActionNone        Action = "none"         // detect and notify only
	ActionAddressList Action = "address-list" // entry in ROUTEROS_LIST_IN/OUT with timeout=
	ActionRawDrop     Action = "raw-drop"     // /ip/firewall/raw prerouting drop rule, placed first
	ActionBlackhole   Action = "blackhole"    // blackhole route for the /32 (/128)
)

// LogFormat is the format of log lines.
type LogFormat string

const (
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// Configuration is the whole environment configuration of flowshield, parsed
// and validated. Variable names below omit the FLOWSHIELD_ prefix.
//
//	variable                 default          form
//	NETWORKS                 (required*)      prefix list: 203.0.113.0/24,2001:db8::/48 (**)
//	NETWORKS_FILE                             file, one prefix a line, # comments (FastNetMon networks_list)
//	NETFLOW_LISTEN           :2055            UDP host:port; set but empty disables
//	SFLOW_LISTEN             :6343            UDP host:port; set but empty disables
//	HTTP_LISTEN              :8080            TCP host:port; set but empty disables
//	DATA_DIR                 ./data           directory of flowshield.db
//	LOG_LEVEL                info             debug|info|warn|error
//	LOG_FORMAT               text             text|json
//	SAMPLING_RATE            1                1..4294967295, used when an exporter announces none
//	WINDOW                   5s               whole seconds, 1s..60s (the detector's range)
//	THRESHOLD_PPS            20000            per host and direction; 0 disables
//	THRESHOLD_MBPS           1000             megabits/s, at most 1000000000; 0 disables
//	THRESHOLD_FLOWS          3500             distinct flows active per second; 0 disables
//	THRESHOLD_{TCP,UDP,ICMP,SYN,FRAG}_{PPS,MBPS}  0
//	HOSTGROUPS                                NAME=PREFIX[,PREFIX...] KEY=VALUE ... ; ... (see parseHostGroups)
//	WHITELIST                                 prefix list, never banned
//	WHITELIST_SOURCES                         prefix list, remote sources not counted
//	LINK_MBPS                0                uplink capacity in megabits/s; 0 unknown
//	ACTION                   none             list of address-list|raw-drop|blackhole, or none alone
//	BAN_TIME                 10m              whole seconds, 1s..8760h
//	BAN_DIRECTIONS           in               list of in|out
//	MAX_BANS                 50               1..1000000
//	ROUTEROS_ADDRESS                          list of host[:port]; port defaults to 8728 (8729 with ROUTEROS_TLS)
//	ROUTEROS_USER                             required with ROUTEROS_ADDRESS
//	ROUTEROS_PASSWORD                         secret (+ _FILE)
//	ROUTEROS_TLS             false            true|false (also 1|0, yes|no, on|off)
//	ROUTEROS_TLS_INSECURE    false            true|false
//	ROUTEROS_LIST_IN         flowshield-in    address-list name
//	ROUTEROS_LIST_OUT        flowshield-out   address-list name, different from ROUTEROS_LIST_IN
//	NOTIFY_SCRIPT                             executable path (or a name found in PATH)
//	WEBHOOK_URL                               http(s) URL, secret (+ _FILE)
//	SLACK_WEBHOOK_URL                         http(s) URL, secret (+ _FILE)
//	GRAPHITE_ADDRESS                          TCP host:port
//	GRAPHITE_PREFIX          flowshield       dot-separated metric path of [A-Za-z0-9_-]
//	METRICS_PUSH_URL                          http(s) URL, secret (+ _FILE)
//	API_TOKEN                                 secret (+ _FILE)
//	DECODE_WORKERS           0                beyond the contract: flow decode workers, 0 = one per CPU, at most 256
//
// (**) In every prefix list (NETWORKS, WHITELIST*, HOSTGROUPS) a bare
// address is a /32 or /128, and host bits are cleared (203.0.113.9/24 is
// 203.0.113.0/24).
//
// (*) NETWORKS or NETWORKS_FILE is required (not both): every command that
// loads the configuration needs it; `flowshield version` does not load it.
//
// Every *_PASSWORD, *_TOKEN and *_URL variable has a *_FILE twin naming a file
// that holds the value (its trailing newline is trimmed; an empty file is an
// error); setting a variable and its twin is an error. List items are trimmed
// of spaces; an empty item (a doubled or trailing comma) is an error.
// Variables with a default take the default when they are set but empty,
// except the three *_LISTEN, where empty means disabled. Unknown FLOWSHIELD_*
// variables are not an error (a newer or older flowshield may know them) but
// are listed in Warnings.
type Configuration struct {
	Networks []netip.Prefix

	NetflowListen string // "" disabled
	SFlowListen   string // "" disabled
	HTTPListen    string // "" disabled
	DataDir       string

	LogLevel  slog.Level
	LogFormat LogFormat

	SamplingRate uint32
	Window       time.Duration

	// Thresholds are the global THRESHOLD_* values.
	Thresholds detect.Thresholds
	HostGroups []HostGroup

	Whitelist        []netip.Prefix
	WhitelistSources []netip.Prefix
	LinkMbps         uint64

	Actions       []Action           // never empty: [ActionNone] when nothing is banned on the router
	BanTime       time.Duration      // whole seconds
	BanDirections []detect.Direction // never empty, in order, no duplicates
	MaxBans       int

	RouterOSAddresses   []string // host:port, port filled in
	RouterOSUser        string
	RouterOSPassword    string
	RouterOSTLS         bool
	RouterOSTLSInsecure bool
	RouterOSListIn      string
	RouterOSListOut     string

	NotifyScript    string
	WebhookURL      string
	SlackWebhookURL string
	GraphiteAddress string
	GraphitePrefix  string
	MetricsPushURL  string
	APIToken        string

	DecodeWorkers int // 0: one per CPU

	// Warnings are things worth telling the operator that do not stop
	// start-up (unknown FLOWSHIELD_* variables, TLS_INSECURE without TLS).
	Warnings []string

	// sources tells, per variable name without prefix, where its value came
	// from (for Effective).
	sources map[string]string
}

// Bans reports whether a ban changes anything on the router.
func (c Configuration) Bans() bool {
	return len(c.Actions) > 0 && c.Actions[0] != ActionNone
}

// Problem is one thing wrong with the configuration.
type Problem struct {
	Variable string // full name, e.g. FLOWSHIELD_WINDOW
	Value    string // as given (redacted for secrets)
	Where    string // optional: "in group \"web\"", "at /etc/networks line 3"
	Expected string // the form that was expected
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Variable)
	b.WriteString("=")
	b.WriteString(strconv.Quote(p.Value))
	if p.Where != "" {
		b.WriteString(" ")
		b.WriteString(p.Where)
	}
	b.WriteString(": expected ")
	b.WriteString(p.Expected)
	return b.String()
}

// ConfigurationError lists every problem found, one line each.
type ConfigurationError struct {
	Problems []Problem
}

func (e *ConfigurationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// DefaultConfiguration is the configuration of an empty environment, except
// that Networks is empty (the environment must give it).
func DefaultConfiguration() Configuration {
	c, err := parseConfiguration(map[string]string{}, false)
	if err != nil {
		panic("appliance: the defaults do not validate: " + err.Error())
	}
	return c
}

// ConfigurationFromOSEnv reads the configuration from the process environment.
func ConfigurationFromOSEnv() (Configuration, error) {
	return ConfigurationFromEnv(env.ToMap(os.Environ()))
}

// ConfigurationFromEnv reads the configuration from environ (names with their
// FLOWSHIELD_ prefix). On error the Configuration holds whatever did parse and
// the error is a *ConfigurationError with every problem found.
func ConfigurationFromEnv(environ map[string]string) (Configuration, error) {
	return parseConfiguration(environ, true)
}

// environmentStrings is what caarlos0/env reads: every variable as a string
// (lists included, to trim their items and reject empty ones ourselves), and
// *_FILE twins already replaced by their file's content. The typed values
// and their checks come after, in parseConfiguration, so each problem can
// name its variable, value and expected form.
type environmentStrings struct {
	Networks     string `env:"NETWORKS"`
	NetworksFile string `env:"NETWORKS_FILE,file"`

	// No envDefault: env would turn "set but empty" into the default, and
	// for these empty means disabled.
	NetflowListen string `env:"NETFLOW_LISTEN"`
	SFlowListen   string `env:"SFLOW_LISTEN"`
	HTTPListen    string `env:"HTTP_LISTEN"`

	DataDir   string `env:"DATA_DIR" envDefault:"./data"`
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat string `env:"LOG_FORMAT" envDefault:"text"`

	SamplingRate string `env:"SAMPLING_RATE" envDefault:"1"`
	Window       string `env:"WINDOW" envDefault:"5s"`

	ThresholdPPS      string `env:"THRESHOLD_PPS" envDefault:"20000"`
	ThresholdMbps     string `env:"THRESHOLD_MBPS" envDefault:"1000"`
	ThresholdFlows    string `env:"THRESHOLD_FLOWS" envDefault:"3500"`
	ThresholdTCPPPS   string `env:"THRESHOLD_TCP_PPS" envDefault:"0"`
	ThresholdTCPMbps  string `env:"THRESHOLD_TCP_MBPS" envDefault:"0"`
	ThresholdUDPPPS   string `env:"THRESHOLD_UDP_PPS" envDefault:"0"`
	ThresholdUDPMbps  string `env:"THRESHOLD_UDP_MBPS" envDefault:"0"`
	ThresholdICMPPPS  string `env:"THRESHOLD_ICMP_PPS" envDefault:"0"`
	ThresholdICMPMbps string `env:"THRESHOLD_ICMP_MBPS" envDefault:"0"`
	ThresholdSYNPPS   string `env:"THRESHOLD_SYN_PPS" envDefault:"0"`
	ThresholdSYNMbps  string `env:"THRESHOLD_SYN_MBPS" envDefault:"0"`
	ThresholdFragPPS  string `env:"THRESHOLD_FRAG_PPS" envDefault:"0"`
	ThresholdFragMbps string `env:"THRESHOLD_FRAG_MBPS" envDefault:"0"`

	HostGroups       string `env:"HOSTGROUPS"`
	Whitelist        string `env:"WHITELIST"`
	WhitelistSources string `env:"WHITELIST_SOURCES"`
	LinkMbps         string `env:"LINK_MBPS" envDefault:"0"`

	Action        string `env:"ACTION" envDefault:"none"`
	BanTime       string `env:"BAN_TIME" envDefault:"10m"`
	BanDirections string `env:"BAN_DIRECTIONS" envDefault:"in"`
	MaxBans       string `env:"MAX_BANS" envDefault:"50"`

	RouterOSAddress      string `env:"ROUTEROS_ADDRESS"`
	RouterOSUser         string `env:"ROUTEROS_USER"`
	RouterOSPassword     string `env:"ROUTEROS_PASSWORD"`
	RouterOSPasswordFile string `env:"ROUTEROS_PASSWORD_FILE,file"`
	RouterOSTLS          string `env:"ROUTEROS_TLS" envDefault:"false"`
	RouterOSTLSInsecure  string `env:"ROUTEROS_TLS_INSECURE" envDefault:"false"`
	RouterOSListIn       string `env:"ROUTEROS_LIST_IN" envDefault:"flowshield-in"`
	RouterOSListOut      string `env:"ROUTEROS_LIST_OUT" envDefault:"flowshield-out"`

	NotifyScript        string `env:"NOTIFY_SCRIPT"`
	WebhookURL          string `env:"WEBHOOK_URL"`
	WebhookURLFile      string `env:"WEBHOOK_URL_FILE,file"`
	SlackWebhookURL     string `env:"SLACK_WEBHOOK_URL"`
	SlackWebhookURLFile string `env:"SLACK_WEBHOOK_URL_FILE,file"`
	GraphiteAddress     string `env:"GRAPHITE_ADDRESS"`
	GraphitePrefix      string `env:"GRAPHITE_PREFIX" envDefault:"flowshield"`
	MetricsPushURL      string `env:"METRICS_PUSH_URL"`
	MetricsPushURLFile  string `env:"METRICS_PUSH_URL_FILE,file"`
	APIToken            string `env:"API_TOKEN"`
	APITokenFile        string `env:"API_TOKEN_FILE,file"`

	DecodeWorkers string `env:"DECODE_WORKERS" envDefault:"0"`
}

// Defaults of the variables env cannot default (see environmentStrings).
const (
	defaultNetflowListen = ":2055"
	defaultSFlowListen   = ":6343"
	defaultHTTPListen    = ":8080"
)

// secretVariables have a *_FILE twin and are never printed.
var secretVariables = []string{
	"ROUTEROS_PASSWORD", "API_TOKEN", "WEBHOOK_URL", "SLACK_WEBHOOK_URL", "METRICS_PUSH_URL",
}

// Expected forms, shared by the messages.
const (
	expectPrefix      = "an IP prefix such as 203.0.113.0/24 or 2001:db8::/48, or a bare address"
	expectPrefixList  = "a comma-separated list of IP prefixes such as 203.0.113.0/24,2001:db8::/48"
	expectDuration    = "a Go duration such as 5s or 1m"
	expectBool        = "true or false"
	expectListen      = "host:port or :port, such as :2055 or 127.0.0.1:2055 or [::1]:2055, or empty to disable"
	expectRemote      = "host:port such as 192.0.2.10:2003 or graphite.example.net:2003"
	expectURL         = "an http:// or https:// URL with a host"
	expectUint        = "a whole number from 0 to 18446744073709551615"
	maxThresholdMbps  = 1_000_000_000 // 1 Pbps: keeps Mbps*1e6 bits far from overflowing uint64
	maxBanTime        = 8760 * time.Hour
	maxWindow         = 60 * time.Second
	maxMaxBans        = 1_000_000
	maxDecodeWorkers  = 256
	maxListNameLength = 63
)

// problems collects the problems of one parse.
type problems struct {
	list []Problem
}

func (p *problems) add(name, value, expected string) {
	p.list = append(p.list, Problem{Variable: EnvPrefix + name, Value: value, Expected: expected})
}

func (p *problems) addWhere(name, value, where, expected string) {
	p.list = append(p.list, Problem{Variable: EnvPrefix + name, Value: value, Where: where, Expected: expected})
}

func parseConfiguration(environ map[string]string, requireNetworks bool) (Configuration, error) {
	var raw environmentStrings
	var probs problems
	c := Configuration{sources: map[string]string{}}

	err := env.ParseWithOptions(&raw, env.Options{Environment: environ, Prefix: EnvPrefix})
	if err != nil {
		addEnvErrors(&probs, err)
	}
	for name, value := range environ {
		if rest, ok := strings.CutPrefix(name, EnvPrefix); ok && value != "" {
			c.sources[rest] = "environment"
		}
	}

	// *_FILE twins: the file's content replaces the value, trailing newline
	// trimmed (env keeps it); both set, or an empty file, is a problem.
	twins := map[string][2]*string{
		"ROUTEROS_PASSWORD": {&raw.RouterOSPassword, &raw.RouterOSPasswordFile},
		"API_TOKEN":         {&raw.APIToken, &raw.APITokenFile},
		"WEBHOOK_URL":       {&raw.WebhookURL, &raw.WebhookURLFile},
		"SLACK_WEBHOOK_URL": {&raw.SlackWebhookURL, &raw.SlackWebhookURLFile},
		"METRICS_PUSH_URL":  {&raw.MetricsPushURL, &raw.MetricsPushURLFile},
	}
	for _, name := range secretVariables {
		value, content := twins[name][0], twins[name][1]
		fileName := environ[EnvPrefix+name+"_FILE"]
		if fileName == "" {
			continue
		}
		if environ[EnvPrefix+name] != "" {
			probs.add(name+"_FILE", fileName, "only one of "+EnvPrefix+name+" and "+EnvPrefix+name+"_FILE to be set")
			continue
		}
		trimmed := trimTrailingNewline(*content)
		if trimmed == "" {
			if !fileProblemReported(probs.list, name+"_FILE") {
				probs.add(name+"_FILE", fileName, "a file holding the value of "+EnvPrefix+name+", but it is empty")
			}
			continue
		}
		*value = trimmed
		c.sources[name] = "file " + fileName
	}

	// Networks.
	switch {
	case environ[EnvPrefix+"NETWORKS"] != "" && environ[EnvPrefix+"NETWORKS_FILE"] != "":
		probs.add("NETWORKS_FILE", environ[EnvPrefix+"NETWORKS_FILE"], "only one of "+EnvPrefix+"NETWORKS and "+EnvPrefix+"NETWORKS_FILE to be set")
	case environ[EnvPrefix+"NETWORKS_FILE"] != "":
		fileName := environ[EnvPrefix+"NETWORKS_FILE"]
		if !fileProblemReported(probs.list, "NETWORKS_FILE") {
			c.Networks = parseNetworksFile(&probs, fileName, raw.NetworksFile)
			c.sources["NETWORKS"] = "file " + fileName
		}
	case strings.TrimSpace(raw.Networks) != "":
		c.Networks = parsePrefixList(&probs, "NETWORKS", raw.Networks)
	default:
		if requireNetworks {
			probs.add("NETWORKS", "", "the protected prefixes such as 203.0.113.0/24,2001:db8::/48, in "+EnvPrefix+"NETWORKS or, one a line, in the file named by "+EnvPrefix+"NETWORKS_FILE")
		}
	}

	c.NetflowListen = parseListen(&probs, environ, "NETFLOW_LISTEN", defaultNetflowListen)
	c.SFlowListen = parseListen(&probs, environ, "SFLOW_LISTEN", defaultSFlowListen)
	c.HTTPListen = parseListen(&probs, environ, "HTTP_LISTEN", defaultHTTPListen)

	c.DataDir = strings.TrimSpace(raw.DataDir)
	if fi, err := os.Stat(c.DataDir); err == nil && !fi.IsDir() {
		probs.add("DATA_DIR", raw.DataDir, "a directory (or a path where one can be made), not a file")
	}

	switch v := strings.ToLower(strings.TrimSpace(raw.LogLevel)); v {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		probs.add("LOG_LEVEL", raw.LogLevel, "one of debug, info, warn, error")
	}
	switch v := strings.ToLower(strings.TrimSpace(raw.LogFormat)); v {
	case "text", "json":
		c.LogFormat = LogFormat(v)
	default:
		probs.add("LOG_FORMAT", raw.LogFormat, "one of text, json")
	}

	if n, ok := parseUint(&probs, "SAMPLING_RATE", raw.SamplingRate, 1, 1<<32-1,
		"a whole number from 1 to 4294967295 (1 in N packets sampled)"); ok {
		c.SamplingRate = uint32(n)
	}
	c.Window = parseWholeSeconds(&probs, "WINDOW", raw.Window, time.Second, maxWindow)

	rawThresholds := map[string]string{
		"pps": raw.ThresholdPPS, "mbps": raw.ThresholdMbps, "flows": raw.ThresholdFlows,
		"tcp_pps": raw.ThresholdTCPPPS, "tcp_mbps": raw.ThresholdTCPMbps,
		"udp_pps": raw.ThresholdUDPPPS, "udp_mbps": raw.ThresholdUDPMbps,
		"icmp_pps": raw.ThresholdICMPPPS, "icmp_mbps": raw.ThresholdICMPMbps,
		"syn_pps": raw.ThresholdSYNPPS, "syn_mbps": raw.ThresholdSYNMbps,
		"frag_pps": raw.ThresholdFragPPS, "frag_mbps": raw.ThresholdFragMbps,
	}
	for _, k := range thresholdKeys {
		name := "THRESHOLD_" + strings.ToUpper(k.key)
		if n, ok := parseThreshold(&probs, name, "", k, rawThresholds[k.key]); ok {
			*k.field(&c.Thresholds) = n
		}
	}

	c.Whitelist = parsePrefixList(&probs, "WHITELIST", raw.Whitelist)
	c.WhitelistSources = parsePrefixList(&probs, "WHITELIST_SOURCES", raw.WhitelistSources)
	if n, ok := parseUint(&probs, "LINK_MBPS", raw.LinkMbps, 0, maxThresholdMbps,
		"the uplink capacity in megabits per second, a whole number from 0 (unknown) to 1000000000"); ok {
		c.LinkMbps = n
	}

	c.Actions = parseActions(&probs, "ACTION", "", raw.Action)
	c.BanTime = parseWholeSeconds(&probs, "BAN_TIME", raw.BanTime, time.Second, maxBanTime)
	c.BanDirections = parseDirections(&probs, raw.BanDirections)
	if n, ok := parseUint(&probs, "MAX_BANS", raw.MaxBans, 1, maxMaxBans,
		"a whole number from 1 to 1000000 (use ACTION=none to ban nothing)"); ok {
		c.MaxBans = int(n)
	}

	c.RouterOSTLS = parseBool(&probs, "ROUTEROS_TLS", raw.RouterOSTLS)
	c.RouterOSTLSInsecure = parseBool(&probs, "ROUTEROS_TLS_INSECURE", raw.RouterOSTLSInsecure)
	c.RouterOSAddresses = parseRouterAddresses(&probs, raw.RouterOSAddress, c.RouterOSTLS)
	c.RouterOSUser = strings.TrimSpace(raw.RouterOSUser)
	c.RouterOSPassword = raw.RouterOSPassword
	if strings.ContainsFunc(c.RouterOSPassword, isControl) {
		probs.add("ROUTEROS_PASSWORD", redacted, "a password without control characters (newline, tab, NUL)")
	}
	if strings.ContainsFunc(c.RouterOSUser, isControl) {
		probs.add("ROUTEROS_USER", raw.RouterOSUser, "a user name without control characters")
	}
	if len(c.RouterOSAddresses) > 0 && c.RouterOSUser == "" {
		probs.add("ROUTEROS_USER", raw.RouterOSUser, "the RouterOS API user name, required when "+EnvPrefix+"ROUTEROS_ADDRESS is set")
	}
	if c.Bans() && strings.TrimSpace(raw.RouterOSAddress) == "" {
		probs.add("ACTION", raw.Action, "none while "+EnvPrefix+"ROUTEROS_ADDRESS is empty (a ban needs a router)")
	}
	if c.RouterOSTLSInsecure && !c.RouterOSTLS {
		c.Warnings = append(c.Warnings, EnvPrefix+"ROUTEROS_TLS_INSECURE=true has no effect without "+EnvPrefix+"ROUTEROS_TLS=true")
	}
	c.RouterOSListIn = parseListName(&probs, "ROUTEROS_LIST_IN", raw.RouterOSListIn)
	c.RouterOSListOut = parseListName(&probs, "ROUTEROS_LIST_OUT", raw.RouterOSListOut)
	if c.RouterOSListIn != "" && c.RouterOSListIn == c.RouterOSListOut {
		probs.add("ROUTEROS_LIST_OUT", raw.RouterOSListOut, "an address-list name different from "+EnvPrefix+"ROUTEROS_LIST_IN")
	}

	if v := strings.TrimSpace(raw.NotifyScript); v != "" {
		if _, err := exec.LookPath(v); err != nil {
			probs.add("NOTIFY_SCRIPT", raw.NotifyScript, "an executable file ("+errorReason(err)+")")
		} else {
			c.NotifyScript = v
		}
	}
	c.WebhookURL = parseURL(&probs, "WEBHOOK_URL", raw.WebhookURL)
	c.SlackWebhookURL = parseURL(&probs, "SLACK_WEBHOOK_URL", raw.SlackWebhookURL)
	c.MetricsPushURL = parseURL(&probs, "METRICS_PUSH_URL", raw.MetricsPushURL)
	if v := strings.TrimSpace(raw.GraphiteAddress); v != "" {
		if hostPortProblem(v, false) != "" {
			probs.add("GRAPHITE_ADDRESS", raw.GraphiteAddress, expectRemote)
		} else {
			c.GraphiteAddress = v
		}
	}
	c.GraphitePrefix = strings.TrimSpace(raw.GraphitePrefix)
	if !graphitePrefixPattern.MatchString(c.GraphitePrefix) {
		probs.add("GRAPHITE_PREFIX", raw.GraphitePrefix, "a dot-separated metric path of letters, digits, _ and -, such as flowshield or dc1.flowshield")
	}
	c.APIToken = raw.APIToken
	if c.APIToken != "" && (strings.TrimSpace(c.APIToken) != c.APIToken || strings.ContainsFunc(c.APIToken, isControl)) {
		probs.add("API_TOKEN", redacted, "a token without leading or trailing spaces or control characters")
	}

	if n, ok := parseUint(&probs, "DECODE_WORKERS", raw.DecodeWorkers, 0, maxDecodeWorkers,
		"a whole number from 0 (one per CPU) to 256"); ok {
		c.DecodeWorkers = int(n)
	}

	// Host groups last: they complete their thresholds from the global ones
	// and check their overrides against the same rules.
	c.HostGroups = parseHostGroups(&probs, raw.HostGroups, c.Thresholds)
	if strings.TrimSpace(raw.RouterOSAddress) == "" {
		for _, g := range c.HostGroups {
			if len(g.Actions) > 0 && g.Actions[0] != ActionNone {
				probs.addWhere("HOSTGROUPS", "action="+joinActions(g.Actions), fmt.Sprintf("in group %q", g.Name),
					"action=none while "+EnvPrefix+"ROUTEROS_ADDRESS is empty (a ban needs a router)")
			}
		}
	}

	c.Warnings = append(c.Warnings, unknownVariables(environ)...)

	if len(probs.list) > 0 {
		return c, &ConfigurationError{Problems: probs.list}
	}
	return c, nil
}

// addEnvErrors turns caarlos0/env's errors into problems. With only string
// fields the one expected kind is a *_FILE that cannot be read.
func addEnvErrors(probs *problems, err error) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		probs.add("", "", "a readable environment ("+err.Error()+")")
		return
	}
	for _, e := range agg.Errors {
		var fileErr env.LoadFileContentError
		if errors.As(e, &fileErr) {
			name := strings.TrimPrefix(fileErr.Key, EnvPrefix)
			probs.add(name, fileErr.Filename, "a readable file ("+errorReason(fileErr.Err)+")")
			continue
		}
		probs.add("", "", "a readable environment ("+e.Error()+")")
	}
}

func fileProblemReported(list []Problem, name string) bool {
	for _, p := range list {
		if p.Variable == EnvPrefix+name {
			return true
		}
	}
	return false
}

// errorReason is the last part of an error message: "no such file or
// directory" rather than the whole "open /x: no such file or directory".
func errorReason(err error) string {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err.Error()
	}
	var execErr *exec.Error
	if errors.As(err, &execErr) {
		return execErr.Err.Error()
	}
	return err.Error()
}

func trimTrailingNewline(s string) string {
	return strings.TrimRight(s, "\r\n")
}

// splitList splits a comma-separated list, trimming items. An empty value is
// an empty list; an empty item (",," or a trailing comma) is reported.
func splitList(probs *problems, name, value, where, expected string) ([]string, bool) {
	if strings.TrimSpace(value) == "" {
		return nil, true
	}
	items := strings.Split(value, ",")
	out := make([]string, 0, len(items))
	ok := true
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			probs.addWhere(name, value, where, expected+" with no empty item (a doubled or trailing comma)")
			ok = false
			break
		}
		out = append(out, item)
	}
	return out, ok
}

// parsePrefix accepts a prefix or a bare address (a /32 or /128). Host bits
// are cleared: 203.0.113.5/24 is 203.0.113.0/24.
func parsePrefix(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func parsePrefixList(probs *problems, name, value string) []netip.Prefix {
	return parsePrefixListWhere(probs, name, value, "")
}

func parsePrefixListWhere(probs *problems, name, value, where string) []netip.Prefix {
	items, _ := splitList(probs, name, value, where, expectPrefixList)
	var out []netip.Prefix
	for _, item := range items {
		p, ok := parsePrefix(item)
		if !ok {
			probs.addWhere(name, item, where, expectPrefix)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parseNetworksFile reads FastNetMon's networks_list format: one prefix a
// line, # starts a comment, blank lines ignored.
func parseNetworksFile(probs *problems, fileName, content string) []netip.Prefix {
	var out []netip.Prefix
	for i, line := range strings.Split(content, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, ok := parsePrefix(line)
		if !ok {
			probs.addWhere("NETWORKS_FILE", line, fmt.Sprintf("at %s line %d", fileName, i+1), expectPrefix+", one a line")
			continue
		}
		out = append(out, p)
	}
	if len(out) == 0 && !fileProblemReported(probs.list, "NETWORKS_FILE") {
		probs.add("NETWORKS_FILE", fileName, "a file with at least one prefix, one a line, # comments")
	}
	return out
}

// parseListen applies the default only when the variable is absent: set but
// empty disables the listener.
func parseListen(probs *problems, environ map[string]string, name, def string) string {
	value, set := environ[EnvPrefix+name]
	if !set {
		return def
	}
	v := strings.TrimSpace(value)
	if v == "" {
		return ""
	}
	if hostPortProblem(v, true) != "" {
		probs.add(name, value, expectListen)
		return ""
	}
	return v
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

func parseUint(probs *problems, name, value string, lo, hi uint64, expected string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
	if err != nil || n < lo || n > hi {
		probs.add(name, value, expected)
		return 0, false
	}
	return n, true
}

func parseThreshold(probs *problems, name, where string, k thresholdKey, value string) (uint64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
	if k.mbps {
		if err != nil || n > maxThresholdMbps {
			probs.addWhere(name, value, where, "megabits per second, a whole number from 0 (disabled) to 1000000000")
			return 0, false
		}
		return n, true
	}
	if err != nil {
		probs.addWhere(name, value, where, "a whole number from 0 (disabled) to 18446744073709551615")
		return 0, false
	}
	return n, true
}

func parseWholeSeconds(probs *problems, name, value string, lo, hi time.Duration) time.Duration {
	expected := fmt.Sprintf("a Go duration such as 5s or 1m, in whole seconds, from %s to %s", shortDuration(lo), shortDuration(hi))
	d, err := time.ParseDuration(strings.TrimSpace(value))
	if err != nil {
		probs.add(name, value, expected)
		return 0
	}
	if d < lo || d > hi || d%time.Second != 0 {
		probs.add(name, value, expected)
		return 0
	}
	return d
}

// shortDuration prints 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func parseBool(probs *problems, name, value string) bool {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "1", "t", "true", "yes", "y", "on":
		return true
	case "0", "f", "false", "no", "n", "off":
		return false
	}
	probs.add(name, value, expectBool)
	return false
}

// parseActions reads ACTION (or a hostgroup's action=): none alone, or a
// list of router actions in a fixed order, duplicates dropped.
func parseActions(probs *problems, name, where, value string) []Action {
	const expected = "none, or a comma-separated list of address-list, raw-drop, blackhole"
	items, ok := splitList(probs, name, value, where, expected)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		probs.addWhere(name, value, where, expected)
		return nil
	}
	seen := map[Action]bool{}
	for _, item := range items {
		a := Action(strings.ToLower(item))
		switch a {
		case ActionNone, ActionAddressList, ActionRawDrop, ActionBlackhole:
			seen[a] = true
		default:
			probs.addWhere(name, item, where, expected)
			return nil
		}
	}
	if seen[ActionNone] {
		if len(seen) > 1 {
			probs.addWhere(name, value, where, "none alone, not combined with other actions")
			return nil
		}
		return []Action{ActionNone}
	}
	var out []Action
	for _, a := range []Action{ActionAddressList, ActionRawDrop, ActionBlackhole} {
		if seen[a] {
			out = append(out, a)
		}
	}
	return out
}

func parseDirections(probs *problems, value string) []detect.Direction {
	const expected = "in, out, or in,out"
	items, ok := splitList(probs, "BAN_DIRECTIONS", value, "", expected)
	if !ok {
		return nil
	}
	if len(items) == 0 {
		probs.add("BAN_DIRECTIONS", value, expected)
		return nil
	}
	var in, out bool
	for _, item := range items {
		switch strings.ToLower(item) {
		case "in":
			in = true
		case "out":
			out = true
		default:
			probs.add("BAN_DIRECTIONS", item, expected)
			return nil
		}
	}
	var dirs []detect.Direction
	if in {
		dirs = append(dirs, detect.In)
	}
	if out {
		dirs = append(dirs, detect.Out)
	}
	return dirs
}

// parseRouterAddresses fills in the API port (8728, or 8729 with TLS) when
// an item is a bare host or address.
func parseRouterAddresses(probs *problems, value string, tls bool) []string {
	const expected = "host:port of the RouterOS API such as 192.0.2.1:8728, or a bare host (port 8728, 8729 with TLS)"
	items, ok := splitList(probs, "ROUTEROS_ADDRESS", value, "", expected)
	if !ok {
		return nil
	}
	port := "8728"
	if tls {
		port = "8729"
	}
	var out []string
	seen := map[string]bool{}
	for _, item := range items {
		addr := item
		if a, err := netip.ParseAddr(strings.Trim(item, "[]")); err == nil {
			addr = net.JoinHostPort(a.String(), port)
		} else if !strings.Contains(item, ":") {
			addr = net.JoinHostPort(item, port)
		}
		if hostPortProblem(addr, false) != "" {
			probs.add("ROUTEROS_ADDRESS", item, expected)
			continue
		}
		if seen[addr] {
			probs.add("ROUTEROS_ADDRESS", item, "each router once")
			continue
		}
		seen[addr] = true
		out = append(out, addr)
	}
	return out
}

func parseListName(probs *problems, name, value string) string {
	v := strings.TrimSpace(value)
	if v == "" || len(v) > maxListNameLength || strings.ContainsFunc(v, isControl) || strings.Contains(v, `"`) {
		probs.add(name, value, "an address-list name of 1 to 63 printable characters without quotes")
		return ""
	}
	return v
}

// parseURL checks an http(s) URL. URLs are secrets (webhook tokens live in
// their paths), so a problem prints the value redacted.
func parseURL(probs *problems, name, value string) string {
	v := strings.TrimSpace(value)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		probs.add(name, redactURL(v), expectURL)
		return ""
	}
	return v
}

var graphitePrefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// unknownVariables lists FLOWSHIELD_* variables no field reads, likely typos.
func unknownVariables(environ map[string]string) []string {
	known := knownVariables()
	var out []string
	for name := range environ {
		rest, ok := strings.CutPrefix(name, EnvPrefix)
		if !ok || known[rest] {
			continue
		}
		out = append(out, "unknown variable "+name+" is ignored")
	}
	sort.Strings(out)
	return out
}

// knownVariables are the names (without prefix) environmentStrings reads.
func knownVariables() map[string]bool {
	params, err := env.GetFieldParams(&environmentStrings{})
	if err != nil {
		panic("appliance: environmentStrings tags: " + err.Error())
	}
	known := make(map[string]bool, len(params))
	for _, p := range params {
		known[p.OwnKey] = true
	}
	return known
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
