package appliance

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/flowshield/flowshield/detect"
)

// redacted stands in for a secret that is set.
const redacted = "(redacted)"

// Setting is one variable's effective value, as `flowshield check` prints it.
type Setting struct {
	Name   string // full name, e.g. FLOWSHIELD_WINDOW
	Value  string // secrets redacted
	Source string // "default", "environment" or "file NAME"
}

// Effective lists every variable with its effective value, in the order of
// the contract, secrets redacted (URLs keep their scheme and host).
func (c Configuration) Effective() []Setting {
	var out []Setting
	add := func(name, value string) {
		source := c.sources[name]
		if source == "" {
			source = "default"
		}
		out = append(out, Setting{Name: EnvPrefix + name, Value: value, Source: source})
	}
	secret := func(v string) string {
		if v == "" {
			return ""
		}
		return redacted
	}
	add("NETWORKS", joinPrefixes(c.Networks))
	add("NETFLOW_LISTEN", c.NetflowListen)
	add("SFLOW_LISTEN", c.SFlowListen)
	add("HTTP_LISTEN", c.HTTPListen)
	add("DATA_DIR", c.DataDir)
	add("LOG_LEVEL", strings.ToLower(c.LogLevel.String()))
	add("LOG_FORMAT", string(c.LogFormat))
	add("SAMPLING_RATE", strconv.FormatUint(uint64(c.SamplingRate), 10))
	add("WINDOW", shortDuration(c.Window))
	for _, k := range thresholdKeys {
		t := c.Thresholds
		add("THRESHOLD_"+strings.ToUpper(k.key), strconv.FormatUint(*k.field(&t), 10))
	}
	groups := make([]string, len(c.HostGroups))
	for i, g := range c.HostGroups {
		groups[i] = g.String()
	}
	add("HOSTGROUPS", strings.Join(groups, "; "))
	add("WHITELIST", joinPrefixes(c.Whitelist))
	add("WHITELIST_SOURCES", joinPrefixes(c.WhitelistSources))
	add("LINK_MBPS", strconv.FormatUint(c.LinkMbps, 10))
	add("ACTION", joinActions(c.Actions))
	add("BAN_TIME", shortDuration(c.BanTime))
	add("BAN_DIRECTIONS", joinDirections(c.BanDirections))
	add("MAX_BANS", strconv.Itoa(c.MaxBans))
	add("ROUTEROS_ADDRESS", strings.Join(c.RouterOSAddresses, ","))
	add("ROUTEROS_USER", c.RouterOSUser)
	add("ROUTEROS_PASSWORD", secret(c.RouterOSPassword))
	add("ROUTEROS_TLS", strconv.FormatBool(c.RouterOSTLS))
	add("ROUTEROS_TLS_INSECURE", strconv.FormatBool(c.RouterOSTLSInsecure))
	add("ROUTEROS_LIST_IN", c.RouterOSListIn)
	add("ROUTEROS_LIST_OUT", c.RouterOSListOut)
	add("NOTIFY_SCRIPT", c.NotifyScript)
	add("WEBHOOK_URL", redactURL(c.WebhookURL))
	add("SLACK_WEBHOOK_URL", redactURL(c.SlackWebhookURL))
	add("GRAPHITE_ADDRESS", c.GraphiteAddress)
	add("GRAPHITE_PREFIX", c.GraphitePrefix)
	add("METRICS_PUSH_URL", redactURL(c.MetricsPushURL))
	add("API_TOKEN", secret(c.APIToken))
	add("DECODE_WORKERS", strconv.Itoa(c.DecodeWorkers))
	return out
}

// WriteEffective prints Effective for `flowshield check`: NAME=VALUE lines,
// those not at their default followed by where they came from.
func (c Configuration) WriteEffective(w io.Writer) error {
	for _, s := range c.Effective() {
		var err error
		if s.Source == "default" {
			_, err = fmt.Fprintf(w, "%s=%s\n", s.Name, s.Value)
		} else {
			_, err = fmt.Fprintf(w, "%s=%s  # from %s\n", s.Name, s.Value, s.Source)
		}
		if err != nil {
			return fmt.Errorf("writing the effective settings: %w", err)
		}
	}
	return nil
}

// redactURL keeps scheme and host of a URL (enough to see where it points)
// and hides user info, path and query, where webhook tokens live.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	return u.Scheme + "://" + u.Host + "/" + redacted
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func joinDirections(ds []detect.Direction) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, ",")
}
