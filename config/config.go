// Package config is flowshield's configuration: every FLOWSHIELD_*
// environment variable of the contract (../shared/CONTRACT.md), read with
// caarlos0/env into one typed Configuration and checked, so that a bad
// value stops start-up with one line per problem naming the variable, the
// value and the form that was expected.
//
// The tags of Configuration are the one list of variables: env reads them,
// and everything else that names the variables derives from them (the
// effective settings `flowshield check` prints, the known names, the
// secrets, the container's envs; a test holds the README's table and the
// contract's to it).
package config

import (
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// EnvPrefix starts the name of every environment variable flowshield reads.
const EnvPrefix = "FLOWSHIELD_"

// LogFormat is the format of log lines.
type LogFormat string

const (
	LogFormatText LogFormat = "text"
	LogFormatJSON LogFormat = "json"
)

// Configuration is the whole environment configuration of flowshield, parsed
// and validated. Each field's env tag names its variable (without the
// FLOWSHIELD_ prefix) and envDefault gives its default; expect is the form
// a problem names when the parser names none (prefix lists and HOSTGROUPS
// name their own, item by item). The order is the contract's.
//
// In every prefix list (NETWORKS, WHITELIST*, EXPORTERS, HOSTGROUPS) a bare
// address is a /32 or /128, and host bits are cleared (203.0.113.9/24 is
// 203.0.113.0/24). NETWORKS or NETWORKS_FILE is required (not both): every
// command that loads the configuration needs it; `flowshield version` does
// not load it.
//
// Every *_PASSWORD, *_TOKEN and *_URL variable is a secret, never printed,
// with a *_FILE twin naming a file that holds the value (its trailing
// newline is trimmed; an empty file is an error); setting a variable and its
// twin is an error. Values are trimmed of surrounding spaces (a password or
// token is taken as it is), list items too; an empty item (a doubled or
// trailing comma) is an error. Variables with a default take it when they
// are set but empty (or blank), except the three *_LISTEN, where empty
// means disabled. Unknown
// FLOWSHIELD_* variables are not an error (a newer or older flowshield may
// know them) but are listed in Warnings.
//
// ACTION keeps the operator's order (duplicates dropped): with
// ESCALATE_AFTER it is the escalation ladder, taken in that order.
type Configuration struct {
	Networks []netip.Prefix `env:"NETWORKS"`

	NetflowListen string `env:"NETFLOW_LISTEN" envDefault:":2055" expect:"host:port or :port, such as :2055 or 127.0.0.1:2055 or [::1]:2055, or empty to disable"`
	SFlowListen   string `env:"SFLOW_LISTEN" envDefault:":6343" expect:"host:port or :port, such as :2055 or 127.0.0.1:2055 or [::1]:2055, or empty to disable"`
	HTTPListen    string `env:"HTTP_LISTEN" envDefault:":8080" expect:"host:port or :port, such as :2055 or 127.0.0.1:2055 or [::1]:2055, or empty to disable"`
	DataDir       string `env:"DATA_DIR" envDefault:"./data" expect:"a directory (or a path where one can be made), not a file"`

	LogLevel  slog.Level `env:"LOG_LEVEL" envDefault:"info" expect:"one of debug, info, warn, error"`
	LogFormat LogFormat  `env:"LOG_FORMAT" envDefault:"text" expect:"one of text, json"`

	SamplingRate uint32         `env:"SAMPLING_RATE" envDefault:"1" expect:"a whole number from 1 to 4294967295 (1 in N packets sampled)"`
	Exporters    []netip.Prefix `env:"EXPORTERS"`
	Window       time.Duration  `env:"WINDOW" envDefault:"5s" expect:"a Go duration such as 5s or 1m, in whole seconds, from 1s to 1m"`

	// Thresholds are the global THRESHOLD_* values.
	Thresholds Thresholds
	HostGroups HostGroups `env:"HOSTGROUPS"`

	Whitelist        []netip.Prefix `env:"WHITELIST"`
	WhitelistSources []netip.Prefix `env:"WHITELIST_SOURCES"`
	LinkMbps         uint64         `env:"LINK_MBPS" envDefault:"0" expect:"the uplink capacity in megabits per second, a whole number from 0 (unknown) to 1000000000"`

	// Actions is never empty: [routeros.ActionNone] when nothing is banned on the
	// router; otherwise in the operator's order (the ladder's with
	// ESCALATE_AFTER), no duplicates.
	Actions       []routeros.Action  `env:"ACTION" envDefault:"none" envSeparator:"," expect:"none, or a comma-separated list of address-list, raw-drop, blackhole, filter"`
	EscalateAfter time.Duration      `env:"ESCALATE_AFTER" envDefault:"0" expect:"a Go duration such as 5s or 1m, in whole seconds, from 0s (every action at once) to 8760h"`
	BanTime       time.Duration      `env:"BAN_TIME" envDefault:"10m" expect:"a Go duration such as 5s or 1m, in whole seconds, from 1s to 8760h"`
	BanDirections []detect.Direction `env:"BAN_DIRECTIONS" envDefault:"in" envSeparator:"," expect:"in, out, or in,out"`
	MaxBans       int                `env:"MAX_BANS" envDefault:"50" expect:"a whole number from 1 to 1000000 (use ACTION=none to ban nothing)"`

	// RouterOSAddresses are host:port, the port filled in.
	RouterOSAddresses   []string `env:"ROUTEROS_ADDRESS" envSeparator:"," expect:"host:port of the RouterOS API such as 192.0.2.1:8728, or a bare host (port 8728, 8729 with TLS)"`
	RouterOSUser        string   `env:"ROUTEROS_USER" expect:"a user name without control characters"`
	RouterOSPassword    string   `env:"ROUTEROS_PASSWORD" expect:"a password without control characters (newline, tab, NUL)"`
	RouterOSTLS         bool     `env:"ROUTEROS_TLS" envDefault:"false" expect:"true or false"`
	RouterOSTLSInsecure bool     `env:"ROUTEROS_TLS_INSECURE" envDefault:"false" expect:"true or false"`
	// RouterOSTLSCAFile and RouterOSTLSFingerprint verify API-SSL by a CA
	// file or by pinning the router's certificate (its own self-signed one
	// included), instead of the system's roots or no check at all.
	RouterOSTLSCAFile      string `env:"ROUTEROS_TLS_CA_FILE" contract:"beyond" expect:"a readable PEM file of the CA certificates that sign the router's API-SSL certificate, with ROUTEROS_TLS=true and not ROUTEROS_TLS_INSECURE"`
	RouterOSTLSFingerprint string `env:"ROUTEROS_TLS_FINGERPRINT" contract:"beyond" expect:"the SHA-256 fingerprint of the router's API-SSL certificate, 64 hex digits with or without colons between pairs, with ROUTEROS_TLS=true and not ROUTEROS_TLS_INSECURE"`
	RouterOSListIn         string `env:"ROUTEROS_LIST_IN" envDefault:"flowshield-in" expect:"an address-list name of 1 to 63 printable characters without quotes"`
	RouterOSListOut        string `env:"ROUTEROS_LIST_OUT" envDefault:"flowshield-out" expect:"an address-list name of 1 to 63 printable characters without quotes"`

	NotifyScript    string `env:"NOTIFY_SCRIPT" expect:"an executable file"`
	WebhookURL      string `env:"WEBHOOK_URL" expect:"an http:// or https:// URL with a host"`
	SlackWebhookURL string `env:"SLACK_WEBHOOK_URL" expect:"an http:// or https:// URL with a host"`
	GraphiteAddress string `env:"GRAPHITE_ADDRESS" expect:"host:port such as 192.0.2.10:2003 or graphite.example.net:2003"`
	GraphitePrefix  string `env:"GRAPHITE_PREFIX" envDefault:"flowshield" expect:"a dot-separated metric path of letters, digits, _ and -, such as flowshield or dc1.flowshield"`
	MetricsPushURL  string `env:"METRICS_PUSH_URL" expect:"an http:// or https:// URL with a host"`
	APIToken        string `env:"API_TOKEN" expect:"a token without leading or trailing spaces or control characters"`

	// DecodeWorkers is the number of flow decode workers; 0: one per CPU.
	DecodeWorkers int `env:"DECODE_WORKERS" envDefault:"0" contract:"beyond" expect:"a whole number from 0 (one per CPU) to 256"`

	// Warnings are things worth telling the operator that do not stop
	// start-up (unknown FLOWSHIELD_* variables, TLS_INSECURE without TLS,
	// a setting this build does not act on).
	Warnings []string

	// sources tells, per variable name without prefix, where its value came
	// from (for Effective).
	sources map[string]string
}

// Thresholds are the per-host THRESHOLD_* variables. The fields are
// detect.Thresholds' (a conversion between the two checks it), with the
// tags env reads; a hostgroup's keys are their names in lower case without
// THRESHOLD_. Their forms are rateForm's, shared with the hostgroup keys.
type Thresholds struct {
	PPS      uint64 `env:"THRESHOLD_PPS" envDefault:"20000"`
	Mbps     uint64 `env:"THRESHOLD_MBPS" envDefault:"1000"`
	Flows    uint64 `env:"THRESHOLD_FLOWS" envDefault:"3500"`
	TCPPPS   uint64 `env:"THRESHOLD_TCP_PPS" envDefault:"0"`
	TCPMbps  uint64 `env:"THRESHOLD_TCP_MBPS" envDefault:"0"`
	UDPPPS   uint64 `env:"THRESHOLD_UDP_PPS" envDefault:"0"`
	UDPMbps  uint64 `env:"THRESHOLD_UDP_MBPS" envDefault:"0"`
	ICMPPPS  uint64 `env:"THRESHOLD_ICMP_PPS" envDefault:"0"`
	ICMPMbps uint64 `env:"THRESHOLD_ICMP_MBPS" envDefault:"0"`
	SYNPPS   uint64 `env:"THRESHOLD_SYN_PPS" envDefault:"0"`
	SYNMbps  uint64 `env:"THRESHOLD_SYN_MBPS" envDefault:"0"`
	FragPPS  uint64 `env:"THRESHOLD_FRAG_PPS" envDefault:"0"`
	FragMbps uint64 `env:"THRESHOLD_FRAG_MBPS" envDefault:"0"`
}

// Detect is t in the detector's type.
func (t Thresholds) Detect() detect.Thresholds { return detect.Thresholds(t) }

// Bans reports whether a ban changes anything on the router.
func (c Configuration) Bans() bool {
	return len(c.Actions) > 0 && c.Actions[0] != routeros.ActionNone
}

// DefaultConfiguration is the configuration of an empty environment, except
// that Networks is empty (the environment must give it).
func DefaultConfiguration() Configuration {
	c, err := parse(map[string]string{}, false)
	if err != nil {
		panic("config: the defaults do not validate: " + err.Error())
	}
	return c
}

// FromOSEnv reads the configuration from the process environment.
func FromOSEnv() (Configuration, error) {
	return FromEnv(env.ToMap(os.Environ()))
}

// FromEnv reads the configuration from environ (names with their
// FLOWSHIELD_ prefix). On error the Configuration holds whatever did parse
// and the error is an *Error with every problem found.
func FromEnv(environ map[string]string) (Configuration, error) {
	return parse(environ, true)
}
