package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
)

// minimal is the smallest valid environment.
func minimal() map[string]string {
	return map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24"}
}

func withEnv(extra map[string]string) map[string]string {
	e := minimal()
	for k, v := range extra {
		if v == "\x00unset" {
			delete(e, k)
			continue
		}
		e[k] = v
	}
	return e
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error is %T, want *Error: %v", err, err)
	}
	return ce.Problems
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(minimal())
	if err != nil {
		t.Fatal(err)
	}
	want := Configuration{
		Networks:       prefixes("203.0.113.0/24"),
		NetflowListen:  ":2055",
		SFlowListen:    ":6343",
		HTTPListen:     ":8080",
		DataDir:        "./data",
		LogLevel:       slog.LevelInfo,
		LogFormat:      LogFormatText,
		SamplingRate:   1,
		Window:         5 * time.Second,
		Thresholds:     Thresholds{PPS: 20000, Mbps: 1000, Flows: 3500},
		LinkMbps:       0,
		Actions:        []routeros.Action{routeros.ActionNone},
		BanTime:        10 * time.Minute,
		BanDirections:  []detect.Direction{detect.In},
		MaxBans:        50,
		RouterOSListIn: "flowshield-in", RouterOSListOut: "flowshield-out",
		GraphitePrefix: "flowshield",
		Warnings:       []string{exportersUnsetWarning},
	}
	c.sources = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if c.Bans() {
		t.Error("Bans() with ACTION=none")
	}
	d := DefaultConfiguration()
	if d.Window != 5*time.Second || len(d.Networks) != 0 || d.NetflowListen != ":2055" {
		t.Errorf("DefaultConfiguration: %+v", d)
	}
}

// TestVariables runs good and bad values for every variable; a bad value
// must give exactly one problem, naming the variable, value and form.
func TestVariables(t *testing.T) {
	dir := t.TempDir()
	script := writeFile(t, dir, "notify.sh", "#!/bin/sh\nexit 0\n", 0o755)
	notExec := writeFile(t, dir, "plain.txt", "x", 0o644)
	aFile := writeFile(t, dir, "afile", "x", 0o644)
	netsFile := writeFile(t, dir, "networks_list", "# FastNetMon networks_list\n203.0.113.0/24\n\n2001:db8::/48   # v6\n  198.51.100.7\n", 0o644)
	badNets := writeFile(t, dir, "bad_networks", "203.0.113.0/24\n# a comment\nnot-a-prefix # bad\n", 0o644)
	emptyNets := writeFile(t, dir, "empty_networks", "# only a comment\n\n", 0o644)
	token := writeFile(t, dir, "token", "s3cret-token\n", 0o600)
	tokenCRLF := writeFile(t, dir, "token_crlf", "s3cret-token\r\n", 0o600)
	emptyToken := writeFile(t, dir, "empty_token", "\n", 0o600)
	password := writeFile(t, dir, "password", "pa ss\n", 0o600)
	hookURL := writeFile(t, dir, "hook", "https://hooks.slack.com/services/T0/B0/XYZ\n", 0o600)
	badURL := writeFile(t, dir, "badurl", "ftp://example.net/x\n", 0o600)
	missing := filepath.Join(dir, "missing")

	router := map[string]string{"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1", "FLOWSHIELD_ROUTEROS_USER": "api"}
	// a CA certificate (a self-signed one serves) as PEM
	caPEM := writeFile(t, dir, "ca.pem", testCAPEM(t), 0o644)
	const pin = "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
	merge := func(a, b map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range a {
			out[k] = v
		}
		for k, v := range b {
			out[k] = v
		}
		return out
	}
	routerTLS := merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_TLS": "true"})

	tests := []struct {
		name  string
		env   map[string]string
		check func(c Configuration) bool // good values
		bad   string                     // bad values: the one problem line starts with this
	}{
		// NETWORKS / NETWORKS_FILE
		{"networks v4 v6 spaces", map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24, 2001:db8::/48 ,198.51.100.5"},
			func(c Configuration) bool {
				return slices.Equal(c.Networks, prefixes("203.0.113.0/24", "2001:db8::/48", "198.51.100.5/32"))
			}, ""},
		{"networks host bits masked", map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.9/24"},
			func(c Configuration) bool { return slices.Equal(c.Networks, prefixes("203.0.113.0/24")) }, ""},
		{"networks bad", map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24,foo"}, nil,
			`FLOWSHIELD_NETWORKS="foo": expected an IP prefix`},
		{"networks trailing comma (env trap)", map[string]string{"FLOWSHIELD_NETWORKS": "203.0.113.0/24,"}, nil,
			`FLOWSHIELD_NETWORKS="203.0.113.0/24,": expected a comma-separated list of IP prefixes such as 203.0.113.0/24,2001:db8::/48 with no empty item`},
		{"networks missing", map[string]string{"FLOWSHIELD_NETWORKS": "\x00unset"}, nil,
			`FLOWSHIELD_NETWORKS="": expected the protected prefixes`},
		{"networks empty", map[string]string{"FLOWSHIELD_NETWORKS": " "}, nil,
			`FLOWSHIELD_NETWORKS="": expected the protected prefixes`},
		{"networks file", map[string]string{"FLOWSHIELD_NETWORKS": "\x00unset", "FLOWSHIELD_NETWORKS_FILE": netsFile},
			func(c Configuration) bool {
				return slices.Equal(c.Networks, prefixes("203.0.113.0/24", "2001:db8::/48", "198.51.100.7/32"))
			}, ""},
		{"networks file and networks", map[string]string{"FLOWSHIELD_NETWORKS_FILE": netsFile}, nil,
			`FLOWSHIELD_NETWORKS_FILE="` + netsFile + `": expected only one of FLOWSHIELD_NETWORKS and FLOWSHIELD_NETWORKS_FILE`},
		{"networks file bad line", map[string]string{"FLOWSHIELD_NETWORKS": "\x00unset", "FLOWSHIELD_NETWORKS_FILE": badNets}, nil,
			`FLOWSHIELD_NETWORKS_FILE="not-a-prefix" at ` + badNets + ` line 3: expected an IP prefix`},
		{"networks file missing", map[string]string{"FLOWSHIELD_NETWORKS": "\x00unset", "FLOWSHIELD_NETWORKS_FILE": missing}, nil,
			`FLOWSHIELD_NETWORKS_FILE="` + missing + `": expected a readable file (no such file or directory)`},
		{"networks file empty", map[string]string{"FLOWSHIELD_NETWORKS": "\x00unset", "FLOWSHIELD_NETWORKS_FILE": emptyNets}, nil,
			`FLOWSHIELD_NETWORKS_FILE="` + emptyNets + `": expected a file with at least one prefix`},

		// listeners
		{"netflow listen", map[string]string{"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0"},
			func(c Configuration) bool { return c.NetflowListen == "127.0.0.1:0" }, ""},
		{"netflow listen empty disables", map[string]string{"FLOWSHIELD_NETFLOW_LISTEN": ""},
			func(c Configuration) bool { return c.NetflowListen == "" && c.SFlowListen == ":6343" }, ""},
		{"netflow listen bad", map[string]string{"FLOWSHIELD_NETFLOW_LISTEN": "2055"}, nil,
			`FLOWSHIELD_NETFLOW_LISTEN="2055": expected host:port or :port`},
		{"sflow listen v6", map[string]string{"FLOWSHIELD_SFLOW_LISTEN": "[::1]:6343"},
			func(c Configuration) bool { return c.SFlowListen == "[::1]:6343" }, ""},
		{"sflow listen empty disables", map[string]string{"FLOWSHIELD_SFLOW_LISTEN": ""},
			func(c Configuration) bool { return c.SFlowListen == "" }, ""},
		{"sflow listen bad port", map[string]string{"FLOWSHIELD_SFLOW_LISTEN": ":70000"}, nil,
			`FLOWSHIELD_SFLOW_LISTEN=":70000": expected host:port`},
		{"http listen", map[string]string{"FLOWSHIELD_HTTP_LISTEN": "127.0.0.1:9000"},
			func(c Configuration) bool { return c.HTTPListen == "127.0.0.1:9000" }, ""},
		{"http listen bad", map[string]string{"FLOWSHIELD_HTTP_LISTEN": "localhost"}, nil,
			`FLOWSHIELD_HTTP_LISTEN="localhost": expected host:port`},

		// DATA_DIR
		{"data dir", map[string]string{"FLOWSHIELD_DATA_DIR": dir},
			func(c Configuration) bool { return c.DataDir == dir }, ""},
		{"data dir empty is default", map[string]string{"FLOWSHIELD_DATA_DIR": ""},
			func(c Configuration) bool { return c.DataDir == "./data" }, ""},
		{"data dir is a file", map[string]string{"FLOWSHIELD_DATA_DIR": aFile}, nil,
			`FLOWSHIELD_DATA_DIR="` + aFile + `": expected a directory`},

		// logging
		{"log level debug", map[string]string{"FLOWSHIELD_LOG_LEVEL": "DEBUG"},
			func(c Configuration) bool { return c.LogLevel == slog.LevelDebug }, ""},
		{"log level warn", map[string]string{"FLOWSHIELD_LOG_LEVEL": "warn"},
			func(c Configuration) bool { return c.LogLevel == slog.LevelWarn }, ""},
		{"log level error", map[string]string{"FLOWSHIELD_LOG_LEVEL": "error"},
			func(c Configuration) bool { return c.LogLevel == slog.LevelError }, ""},
		{"log level bad", map[string]string{"FLOWSHIELD_LOG_LEVEL": "verbose"}, nil,
			`FLOWSHIELD_LOG_LEVEL="verbose": expected one of debug, info, warn, error`},
		{"log format json", map[string]string{"FLOWSHIELD_LOG_FORMAT": "json"},
			func(c Configuration) bool { return c.LogFormat == LogFormatJSON }, ""},
		{"log format bad", map[string]string{"FLOWSHIELD_LOG_FORMAT": "xml"}, nil,
			`FLOWSHIELD_LOG_FORMAT="xml": expected one of text, json`},

		// SAMPLING_RATE, WINDOW
		{"sampling rate", map[string]string{"FLOWSHIELD_SAMPLING_RATE": "1024"},
			func(c Configuration) bool { return c.SamplingRate == 1024 }, ""},
		{"sampling rate zero", map[string]string{"FLOWSHIELD_SAMPLING_RATE": "0"}, nil,
			`FLOWSHIELD_SAMPLING_RATE="0": expected a whole number from 1 to 4294967295`},
		{"sampling rate too big", map[string]string{"FLOWSHIELD_SAMPLING_RATE": "4294967296"}, nil,
			`FLOWSHIELD_SAMPLING_RATE="4294967296": expected`},
		{"window", map[string]string{"FLOWSHIELD_WINDOW": "1s"},
			func(c Configuration) bool { return c.Window == time.Second }, ""},
		{"window bad", map[string]string{"FLOWSHIELD_WINDOW": "5x"}, nil,
			`FLOWSHIELD_WINDOW="5x": expected a Go duration such as 5s or 1m`},
		{"window fractional", map[string]string{"FLOWSHIELD_WINDOW": "1500ms"}, nil,
			`FLOWSHIELD_WINDOW="1500ms": expected a Go duration such as 5s or 1m, in whole seconds, from 1s to 1m`},
		{"window too long", map[string]string{"FLOWSHIELD_WINDOW": "61s"}, nil, `FLOWSHIELD_WINDOW="61s": expected a Go duration such as 5s or 1m, in whole seconds, from 1s to 1m`},

		// EXPORTERS (the collector's allowed sources)
		{"exporters", map[string]string{"FLOWSHIELD_EXPORTERS": "192.0.2.0/24, 2001:db8::1"},
			func(c Configuration) bool {
				return slices.Equal(c.Exporters, prefixes("192.0.2.0/24", "2001:db8::1/128"))
			}, ""},
		{"exporters bad", map[string]string{"FLOWSHIELD_EXPORTERS": "192.0.2.0/24,nope"}, nil,
			`FLOWSHIELD_EXPORTERS="nope": expected an IP prefix such as 203.0.113.0/24 or 2001:db8::/48, or a bare address`},
		{"exporters doubled comma", map[string]string{"FLOWSHIELD_EXPORTERS": "192.0.2.0/24,,192.0.2.7"}, nil,
			`FLOWSHIELD_EXPORTERS="192.0.2.0/24,,192.0.2.7": expected a comma-separated list of IP prefixes such as 203.0.113.0/24,2001:db8::/48 with no empty item (a doubled or trailing comma)`},

		// thresholds (the per-protocol ones are covered by TestThresholdVariables)
		{"threshold pps", map[string]string{"FLOWSHIELD_THRESHOLD_PPS": "0", "FLOWSHIELD_THRESHOLD_MBPS": "2000", "FLOWSHIELD_THRESHOLD_FLOWS": "18446744073709551615"},
			func(c Configuration) bool {
				return c.Thresholds.PPS == 0 && c.Thresholds.Mbps == 2000 && c.Thresholds.Flows == 18446744073709551615
			}, ""},
		{"threshold pps negative", map[string]string{"FLOWSHIELD_THRESHOLD_PPS": "-1"}, nil,
			`FLOWSHIELD_THRESHOLD_PPS="-1": expected a whole number from 0 (disabled)`},
		{"threshold mbps too big", map[string]string{"FLOWSHIELD_THRESHOLD_MBPS": "1000000001"}, nil,
			`FLOWSHIELD_THRESHOLD_MBPS="1000000001": expected megabits per second`},
		{"threshold flows float", map[string]string{"FLOWSHIELD_THRESHOLD_FLOWS": "1.5"}, nil,
			`FLOWSHIELD_THRESHOLD_FLOWS="1.5": expected a whole number`},

		// whitelists, link
		{"whitelist", map[string]string{"FLOWSHIELD_WHITELIST": "203.0.113.53, 2001:db8::53", "FLOWSHIELD_WHITELIST_SOURCES": "192.0.2.0/24"},
			func(c Configuration) bool {
				return slices.Equal(c.Whitelist, prefixes("203.0.113.53/32", "2001:db8::53/128")) &&
					slices.Equal(c.WhitelistSources, prefixes("192.0.2.0/24"))
			}, ""},
		{"whitelist bad", map[string]string{"FLOWSHIELD_WHITELIST": "203.0.113.0/24, ,10.0.0.0/8"}, nil,
			`FLOWSHIELD_WHITELIST="203.0.113.0/24, ,10.0.0.0/8": expected a comma-separated list`},
		{"whitelist zone", map[string]string{"FLOWSHIELD_WHITELIST": "fe80::1%eth0"}, nil,
			`FLOWSHIELD_WHITELIST="fe80::1%eth0": expected an IP prefix`},
		{"whitelist sources bad", map[string]string{"FLOWSHIELD_WHITELIST_SOURCES": "192.0.2.0/24/8"}, nil,
			`FLOWSHIELD_WHITELIST_SOURCES="192.0.2.0/24/8": expected an IP prefix`},
		{"link mbps", map[string]string{"FLOWSHIELD_LINK_MBPS": "10000"},
			func(c Configuration) bool { return c.LinkMbps == 10000 }, ""},
		{"link mbps bad", map[string]string{"FLOWSHIELD_LINK_MBPS": "10G"}, nil,
			`FLOWSHIELD_LINK_MBPS="10G": expected the uplink capacity in megabits per second`},

		// ACTION, BAN_*
		{"action list", merge(router, map[string]string{"FLOWSHIELD_ACTION": "blackhole, address-list,address-list"}),
			func(c Configuration) bool {
				return slices.Equal(c.Actions, []routeros.Action{routeros.ActionBlackhole, routeros.ActionAddressList}) && c.Bans()
			}, ""},
		{"action unknown", map[string]string{"FLOWSHIELD_ACTION": "drop"}, nil,
			`FLOWSHIELD_ACTION="drop": expected none, or a comma-separated list of address-list, raw-drop, blackhole`},
		{"action none combined", merge(router, map[string]string{"FLOWSHIELD_ACTION": "none,raw-drop"}), nil,
			`FLOWSHIELD_ACTION="none,raw-drop": expected none alone`},
		{"action without router", map[string]string{"FLOWSHIELD_ACTION": "raw-drop"}, nil,
			`FLOWSHIELD_ACTION="raw-drop": expected none while FLOWSHIELD_ROUTEROS_ADDRESS is empty`},
		{"ban time", map[string]string{"FLOWSHIELD_BAN_TIME": "1h30m"},
			func(c Configuration) bool { return c.BanTime == 90*time.Minute }, ""},
		{"action filter", merge(router, map[string]string{"FLOWSHIELD_ACTION": "raw-drop, FILTER"}),
			func(c Configuration) bool {
				return slices.Equal(c.Actions, []routeros.Action{routeros.ActionRawDrop, routeros.ActionFilter}) && c.Bans()
			}, ""},
		{"action empty item", merge(router, map[string]string{"FLOWSHIELD_ACTION": "raw-drop,"}), nil,
			`FLOWSHIELD_ACTION="raw-drop,": expected none, or a comma-separated list of address-list, raw-drop, blackhole, filter with no empty item (a doubled or trailing comma)`},
		{"escalate after", map[string]string{"FLOWSHIELD_ESCALATE_AFTER": "30s"},
			func(c Configuration) bool { return c.EscalateAfter == 30*time.Second }, ""},
		{"escalate after default", map[string]string{"FLOWSHIELD_ESCALATE_AFTER": ""},
			func(c Configuration) bool { return c.EscalateAfter == 0 }, ""},
		{"escalate after number", map[string]string{"FLOWSHIELD_ESCALATE_AFTER": "90"}, nil,
			`FLOWSHIELD_ESCALATE_AFTER="90": expected a Go duration such as 5s or 1m, in whole seconds, from 0s (every action at once) to 8760h`},
		{"escalate after fractional", map[string]string{"FLOWSHIELD_ESCALATE_AFTER": "1.5s"}, nil,
			`FLOWSHIELD_ESCALATE_AFTER="1.5s": expected a Go duration`},
		{"escalate after negative", map[string]string{"FLOWSHIELD_ESCALATE_AFTER": "-5s"}, nil,
			`FLOWSHIELD_ESCALATE_AFTER="-5s": expected a Go duration`},
		{"ban time zero", map[string]string{"FLOWSHIELD_BAN_TIME": "0s"}, nil,
			`FLOWSHIELD_BAN_TIME="0s": expected a Go duration such as 5s or 1m, in whole seconds, from 1s to 8760h`},
		{"ban time number", map[string]string{"FLOWSHIELD_BAN_TIME": "600"}, nil, `FLOWSHIELD_BAN_TIME="600": expected a Go duration`},
		{"ban directions", map[string]string{"FLOWSHIELD_BAN_DIRECTIONS": "out, in"},
			func(c Configuration) bool {
				return slices.Equal(c.BanDirections, []detect.Direction{detect.In, detect.Out})
			}, ""},
		{"ban directions bad", map[string]string{"FLOWSHIELD_BAN_DIRECTIONS": "incoming"}, nil,
			`FLOWSHIELD_BAN_DIRECTIONS="incoming": expected in, out, or in,out`},
		{"max bans", map[string]string{"FLOWSHIELD_MAX_BANS": "1"},
			func(c Configuration) bool { return c.MaxBans == 1 }, ""},
		{"max bans zero", map[string]string{"FLOWSHIELD_MAX_BANS": "0"}, nil,
			`FLOWSHIELD_MAX_BANS="0": expected a whole number from 1 to 1000000`},

		// RouterOS
		{"router default port", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1, router.example.net:1234,2001:db8::1"}),
			func(c Configuration) bool {
				return slices.Equal(c.RouterOSAddresses, []string{"192.0.2.1:8728", "router.example.net:1234", "[2001:db8::1]:8728"})
			}, ""},
		{"router tls port", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_TLS": "true", "FLOWSHIELD_ROUTEROS_TLS_INSECURE": "yes"}),
			func(c Configuration) bool {
				return c.RouterOSTLS && c.RouterOSTLSInsecure && slices.Equal(c.RouterOSAddresses, []string{"192.0.2.1:8729"})
			}, ""},
		{"router address bad", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1:99999"}), nil,
			`FLOWSHIELD_ROUTEROS_ADDRESS="192.0.2.1:99999": expected host:port of the RouterOS API`},
		{"router address twice", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1,192.0.2.1:8728"}), nil,
			`FLOWSHIELD_ROUTEROS_ADDRESS="192.0.2.1:8728": expected each router once`},
		{"router user missing", map[string]string{"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1"}, nil,
			`FLOWSHIELD_ROUTEROS_USER="": expected the RouterOS API user name`},
		{"router password", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_PASSWORD": " with spaces "}),
			func(c Configuration) bool { return c.RouterOSPassword == " with spaces " }, ""},
		{"router password control", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_PASSWORD": "a\nb"}), nil,
			`FLOWSHIELD_ROUTEROS_PASSWORD="(redacted)": expected a password without control characters`},
		{"router tls bad", map[string]string{"FLOWSHIELD_ROUTEROS_TLS": "maybe"}, nil,
			`FLOWSHIELD_ROUTEROS_TLS="maybe": expected true or false`},
		{"router tls insecure bad", map[string]string{"FLOWSHIELD_ROUTEROS_TLS_INSECURE": "2"}, nil,
			`FLOWSHIELD_ROUTEROS_TLS_INSECURE="2": expected true or false`},
		{"router tls fingerprint", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT": pin}),
			func(c Configuration) bool { return c.RouterOSTLSFingerprint == pin }, ""},
		{"router tls fingerprint bare hex", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT": strings.ReplaceAll(strings.ToLower(pin), ":", "")}),
			func(c Configuration) bool { return c.RouterOSTLSFingerprint != "" }, ""},
		{"router tls fingerprint bad", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT": "sha256:0123"}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT="sha256:0123": expected the SHA-256 fingerprint of the router's API-SSL certificate, 64 hex digits`},
		{"router tls fingerprint without tls", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT": pin}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT="` + pin + `": expected unset while FLOWSHIELD_ROUTEROS_TLS is false`},
		{"router tls fingerprint insecure", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT": pin, "FLOWSHIELD_ROUTEROS_TLS_INSECURE": "true"}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT="` + pin + `": expected unset while FLOWSHIELD_ROUTEROS_TLS_INSECURE is true`},
		{"router tls ca file", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_CA_FILE": caPEM}),
			func(c Configuration) bool { return c.RouterOSTLSCAFile == caPEM }, ""},
		{"router tls ca file not pem", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_CA_FILE": aFile}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_CA_FILE="` + aFile + `": expected a readable PEM file of the CA certificates`},
		{"router tls ca file missing", merge(routerTLS, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_CA_FILE": missing}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_CA_FILE="` + missing + `": expected a readable PEM file`},
		{"router tls ca file without tls", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_TLS_CA_FILE": caPEM}), nil,
			`FLOWSHIELD_ROUTEROS_TLS_CA_FILE="` + caPEM + `": expected unset while FLOWSHIELD_ROUTEROS_TLS is false`},
		{"router lists", map[string]string{"FLOWSHIELD_ROUTEROS_LIST_IN": "ddos-victims", "FLOWSHIELD_ROUTEROS_LIST_OUT": "ddos sources"},
			func(c Configuration) bool {
				return c.RouterOSListIn == "ddos-victims" && c.RouterOSListOut == "ddos sources"
			}, ""},
		{"router list in bad", map[string]string{"FLOWSHIELD_ROUTEROS_LIST_IN": `a"b`}, nil,
			`FLOWSHIELD_ROUTEROS_LIST_IN="a\"b": expected an address-list name`},
		{"router list out same", map[string]string{"FLOWSHIELD_ROUTEROS_LIST_OUT": "flowshield-in"}, nil,
			`FLOWSHIELD_ROUTEROS_LIST_OUT="flowshield-in": expected an address-list name different`},

		// notifications, metrics, API
		{"notify script", map[string]string{"FLOWSHIELD_NOTIFY_SCRIPT": script},
			func(c Configuration) bool { return c.NotifyScript == script }, ""},
		{"notify script not executable", map[string]string{"FLOWSHIELD_NOTIFY_SCRIPT": notExec}, nil,
			`FLOWSHIELD_NOTIFY_SCRIPT="` + notExec + `": expected an executable file (permission denied)`},
		{"webhook url", map[string]string{"FLOWSHIELD_WEBHOOK_URL": "https://example.net/hook?k=1"},
			func(c Configuration) bool { return c.WebhookURL == "https://example.net/hook?k=1" }, ""},
		{"webhook url bad", map[string]string{"FLOWSHIELD_WEBHOOK_URL": "example.net/hook"}, nil,
			`FLOWSHIELD_WEBHOOK_URL="(redacted)": expected an http:// or https:// URL with a host`},
		{"slack url bad", map[string]string{"FLOWSHIELD_SLACK_WEBHOOK_URL": "ftp://hooks.slack.com/services/T/B/SECRET"}, nil,
			`FLOWSHIELD_SLACK_WEBHOOK_URL="ftp://hooks.slack.com/(redacted)": expected an http:// or https:// URL`},
		{"metrics push url bad", map[string]string{"FLOWSHIELD_METRICS_PUSH_URL": "http://"}, nil,
			`FLOWSHIELD_METRICS_PUSH_URL="(redacted)": expected an http:// or https:// URL`},
		{"graphite", map[string]string{"FLOWSHIELD_GRAPHITE_ADDRESS": "127.0.0.1:2003", "FLOWSHIELD_GRAPHITE_PREFIX": "dc1.fastnetmon"},
			func(c Configuration) bool {
				return c.GraphiteAddress == "127.0.0.1:2003" && c.GraphitePrefix == "dc1.fastnetmon"
			}, ""},
		{"graphite address bad", map[string]string{"FLOWSHIELD_GRAPHITE_ADDRESS": ":2003"}, nil,
			`FLOWSHIELD_GRAPHITE_ADDRESS=":2003": expected host:port such as`},
		{"graphite prefix bad", map[string]string{"FLOWSHIELD_GRAPHITE_PREFIX": "a..b"}, nil,
			`FLOWSHIELD_GRAPHITE_PREFIX="a..b": expected a dot-separated metric path`},
		{"api token", map[string]string{"FLOWSHIELD_API_TOKEN": "tok"},
			func(c Configuration) bool { return c.APIToken == "tok" }, ""},
		{"api token spaces", map[string]string{"FLOWSHIELD_API_TOKEN": "tok "}, nil,
			`FLOWSHIELD_API_TOKEN="(redacted)": expected a token without leading or trailing spaces`},
		{"decode workers", map[string]string{"FLOWSHIELD_DECODE_WORKERS": "4"},
			func(c Configuration) bool { return c.DecodeWorkers == 4 }, ""},
		{"decode workers bad", map[string]string{"FLOWSHIELD_DECODE_WORKERS": "1000"}, nil,
			`FLOWSHIELD_DECODE_WORKERS="1000": expected a whole number from 0 (one per CPU) to 256`},

		// *_FILE twins
		{"token file trims newline (env trap)", map[string]string{"FLOWSHIELD_API_TOKEN_FILE": token},
			func(c Configuration) bool { return c.APIToken == "s3cret-token" }, ""},
		{"token file trims CRLF", map[string]string{"FLOWSHIELD_API_TOKEN_FILE": tokenCRLF},
			func(c Configuration) bool { return c.APIToken == "s3cret-token" }, ""},
		{"token file empty", map[string]string{"FLOWSHIELD_API_TOKEN_FILE": emptyToken}, nil,
			`FLOWSHIELD_API_TOKEN_FILE="` + emptyToken + `": expected a file holding the value of FLOWSHIELD_API_TOKEN, but it is empty`},
		{"token file and token", map[string]string{"FLOWSHIELD_API_TOKEN_FILE": token, "FLOWSHIELD_API_TOKEN": "x"}, nil,
			`FLOWSHIELD_API_TOKEN_FILE="` + token + `": expected only one of FLOWSHIELD_API_TOKEN and FLOWSHIELD_API_TOKEN_FILE to be set`},
		{"password file", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_PASSWORD_FILE": password}),
			func(c Configuration) bool { return c.RouterOSPassword == "pa ss" }, ""},
		{"password file missing", merge(router, map[string]string{"FLOWSHIELD_ROUTEROS_PASSWORD_FILE": missing}), nil,
			`FLOWSHIELD_ROUTEROS_PASSWORD_FILE="` + missing + `": expected a readable file (no such file or directory)`},
		{"webhook url file", map[string]string{"FLOWSHIELD_WEBHOOK_URL_FILE": hookURL},
			func(c Configuration) bool { return c.WebhookURL == "https://hooks.slack.com/services/T0/B0/XYZ" }, ""},
		{"webhook url file bad url", map[string]string{"FLOWSHIELD_WEBHOOK_URL_FILE": badURL}, nil,
			`FLOWSHIELD_WEBHOOK_URL="ftp://example.net/(redacted)": expected an http:// or https:// URL`},
		{"webhook url file and url", map[string]string{"FLOWSHIELD_WEBHOOK_URL_FILE": hookURL, "FLOWSHIELD_WEBHOOK_URL": "https://x.example/"}, nil,
			`FLOWSHIELD_WEBHOOK_URL_FILE="` + hookURL + `": expected only one of`},
		{"slack url file", map[string]string{"FLOWSHIELD_SLACK_WEBHOOK_URL_FILE": hookURL},
			func(c Configuration) bool { return c.SlackWebhookURL == "https://hooks.slack.com/services/T0/B0/XYZ" }, ""},
		{"slack url file and url", map[string]string{"FLOWSHIELD_SLACK_WEBHOOK_URL_FILE": hookURL, "FLOWSHIELD_SLACK_WEBHOOK_URL": "https://x.example/"}, nil,
			`FLOWSHIELD_SLACK_WEBHOOK_URL_FILE="` + hookURL + `": expected only one of`},
		{"metrics push url file", map[string]string{"FLOWSHIELD_METRICS_PUSH_URL_FILE": hookURL},
			func(c Configuration) bool { return c.MetricsPushURL == "https://hooks.slack.com/services/T0/B0/XYZ" }, ""},
		{"metrics push url file missing", map[string]string{"FLOWSHIELD_METRICS_PUSH_URL_FILE": missing}, nil,
			`FLOWSHIELD_METRICS_PUSH_URL_FILE="` + missing + `": expected a readable file`},

		// HOSTGROUPS (the grammar in detail: TestHostGroups)
		{"hostgroups", map[string]string{"FLOWSHIELD_HOSTGROUPS": "web=203.0.113.0/25 pps=50000"},
			func(c Configuration) bool {
				return len(c.HostGroups.List) == 1 && c.HostGroups.List[0].Thresholds.PPS == 50000
			}, ""},
		{"hostgroups action without router", map[string]string{"FLOWSHIELD_HOSTGROUPS": "web=203.0.113.0/25 action=blackhole"}, nil,
			`FLOWSHIELD_HOSTGROUPS="action=blackhole" in group "web": expected action=none while FLOWSHIELD_ROUTEROS_ADDRESS is empty`},
		{"hostgroups bad", map[string]string{"FLOWSHIELD_HOSTGROUPS": "web 203.0.113.0/25"}, nil,
			`FLOWSHIELD_HOSTGROUPS="web" in entry 1: expected NAME=PREFIX`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromEnv(withEnv(tt.env))
			probs := problemsOf(t, err)
			if tt.bad == "" {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				if !tt.check(c) {
					t.Errorf("wrong value: %+v", c)
				}
				return
			}
			if len(probs) != 1 {
				t.Fatalf("want exactly one problem starting %q, got %d:\n%v", tt.bad, len(probs), err)
			}
			if got := probs[0].String(); !strings.HasPrefix(got, tt.bad) {
				t.Errorf("problem\n got %s\nwant %s...", got, tt.bad)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("one problem must be one line: %q", err.Error())
			}
		})
	}

	// Every variable has at least one bad value above.
	covered := map[string]bool{}
	for _, tt := range tests {
		if tt.bad != "" {
			name, _, _ := strings.Cut(tt.bad, "=")
			covered[strings.TrimPrefix(name, EnvPrefix)] = true
		}
	}
	for _, k := range thresholdKeys {
		covered[k.variable] = true // TestThresholdVariables
	}
	for _, v := range variables {
		if !covered[v.Name] {
			t.Errorf("no bad value tested for FLOWSHIELD_%s", v.Name)
		}
	}
}

func TestThresholdVariables(t *testing.T) {
	for _, k := range thresholdKeys {
		name := EnvPrefix + k.variable
		t.Run(name, func(t *testing.T) {
			c, err := FromEnv(withEnv(map[string]string{name: " 123 "}))
			if err != nil {
				t.Fatal(err)
			}
			if got := k.get(c.Thresholds.Detect()); got != 123 {
				t.Errorf("%s=123 gave %d", name, got)
			}
			for _, bad := range []string{"x", "-5", "1e3", "99999999999999999999"} {
				_, err := FromEnv(withEnv(map[string]string{name: bad}))
				probs := problemsOf(t, err)
				if len(probs) != 1 || probs[0].Variable != name || probs[0].Value != bad {
					t.Errorf("%s=%q: problems %v", name, bad, probs)
				}
			}
		})
	}
}

// TestAllProblemsCollected: several bad values give one line each.
func TestAllProblemsCollected(t *testing.T) {
	_, err := FromEnv(map[string]string{
		"FLOWSHIELD_WINDOW":         "5x",
		"FLOWSHIELD_LOG_LEVEL":      "loud",
		"FLOWSHIELD_THRESHOLD_PPS":  "many",
		"FLOWSHIELD_API_TOKEN_FILE": "/nonexistent/flowshield-token",
	})
	probs := problemsOf(t, err)
	want := []string{
		`FLOWSHIELD_API_TOKEN_FILE="/nonexistent/flowshield-token": expected a readable file`,
		`FLOWSHIELD_NETWORKS="": expected`,
		`FLOWSHIELD_LOG_LEVEL="loud": expected`,
		`FLOWSHIELD_WINDOW="5x": expected a Go duration such as 5s or 1m`,
		`FLOWSHIELD_THRESHOLD_PPS="many": expected`,
	}
	if len(probs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(want), err)
	}
	lines := strings.Split(err.Error(), "\n")
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: got %s, want %s...", i, lines[i], w)
		}
	}
}

func TestEffectiveRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "file-token-value\n", 0o600)
	c, err := FromEnv(withEnv(map[string]string{
		"FLOWSHIELD_ROUTEROS_ADDRESS":  "192.0.2.1",
		"FLOWSHIELD_ROUTEROS_USER":     "api",
		"FLOWSHIELD_ROUTEROS_PASSWORD": "router-password-value",
		"FLOWSHIELD_API_TOKEN_FILE":    tokenFile,
		"FLOWSHIELD_WEBHOOK_URL":       "https://user:pw@hooks.example.net/secret-path?key=secret-query",
		"FLOWSHIELD_HOSTGROUPS":        "web=203.0.113.0/25 pps=5 action=raw-drop",
		"FLOWSHIELD_WINDOW":            "10s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := c.WriteEffective(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, secret := range []string{"router-password-value", "file-token-value", "secret-path", "secret-query", "user:pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("effective settings show the secret %q:\n%s", secret, out)
		}
	}
	settings := map[string]Setting{}
	for _, s := range c.Effective() {
		settings[s.Name] = s
	}
	secrets := 0
	for _, v := range variables {
		if v.Secret {
			secrets++
		}
	}
	if len(settings) != len(variables)-secrets-1 { // no *_FILE names, NETWORKS_FILE folded into NETWORKS
		t.Errorf("Effective lists %d variables, want %d", len(settings), len(variables)-secrets-1)
	}
	checks := []Setting{
		{"FLOWSHIELD_ROUTEROS_PASSWORD", "(redacted)", "environment"},
		{"FLOWSHIELD_API_TOKEN", "(redacted)", "file " + tokenFile},
		{"FLOWSHIELD_WEBHOOK_URL", "https://hooks.example.net/(redacted)", "environment"},
		{"FLOWSHIELD_WINDOW", "10s", "environment"},
		{"FLOWSHIELD_BAN_TIME", "10m", "default"},
		{"FLOWSHIELD_HOSTGROUPS", "web=203.0.113.0/25 pps=5 action=raw-drop", "environment"},
		{"FLOWSHIELD_SLACK_WEBHOOK_URL", "", "default"},
	}
	for _, want := range checks {
		if got := settings[want.Name]; got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

func TestUnknownVariableWarns(t *testing.T) {
	c, err := FromEnv(withEnv(map[string]string{"FLOWSHIELD_THRESHOLD_PSS": "1", "OTHER": "x", "FLOWSHIELD_EXPORTERS": "192.0.2.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "FLOWSHIELD_THRESHOLD_PSS") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

// TestLadderSettingsLoadQuietly: ACTION=filter and ESCALATE_AFTER are
// acted on: they load in the operator's order, with no warning.
func TestLadderSettingsLoadQuietly(t *testing.T) {
	c, err := FromEnv(withEnv(map[string]string{
		"FLOWSHIELD_ROUTEROS_ADDRESS": "192.0.2.1", "FLOWSHIELD_ROUTEROS_USER": "api",
		"FLOWSHIELD_EXPORTERS":      "192.0.2.1",
		"FLOWSHIELD_ESCALATE_AFTER": "1m",
		"FLOWSHIELD_ACTION":         "filter,address-list,blackhole,filter",
		"FLOWSHIELD_HOSTGROUPS":     "web=203.0.113.0/25 action=blackhole,filter; dns=203.0.113.53 action=raw-drop",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
	if want := []routeros.Action{routeros.ActionFilter, routeros.ActionAddressList, routeros.ActionBlackhole}; !slices.Equal(c.Actions, want) {
		t.Errorf("ACTION %v, want %v", c.Actions, want)
	}
	if want := []routeros.Action{routeros.ActionBlackhole, routeros.ActionFilter}; !slices.Equal(c.GroupActions("web"), want) {
		t.Errorf("web action %v, want %v", c.GroupActions("web"), want)
	}
	if c.EscalateAfter != time.Minute {
		t.Errorf("ESCALATE_AFTER %v", c.EscalateAfter)
	}
}

// TestExportersUnsetWarns: with EXPORTERS unset any source may send flows,
// which the configuration says (the daemon logs it at start, check prints
// it); with the flow listeners off there is nothing to warn of.
func TestExportersUnsetWarns(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"unset", map[string]string{}, []string{exportersUnsetWarning}},
		{"set", map[string]string{"FLOWSHIELD_EXPORTERS": "192.0.2.1"}, nil},
		{"no flow listener", map[string]string{"FLOWSHIELD_NETFLOW_LISTEN": "", "FLOWSHIELD_SFLOW_LISTEN": ""}, nil},
	} {
		c, err := FromEnv(withEnv(tt.env))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Warnings, tt.want) {
			t.Errorf("%s: warnings %q, want %q", tt.name, c.Warnings, tt.want)
		}
	}
}

func TestFromOSEnv(t *testing.T) {
	t.Setenv("FLOWSHIELD_NETWORKS", "192.0.2.0/24")
	t.Setenv("FLOWSHIELD_MAX_BANS", "7")
	c, err := FromOSEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxBans != 7 || !slices.Equal(c.Networks, prefixes("192.0.2.0/24")) {
		t.Errorf("%+v", c)
	}
}

// testCAPEM is a freshly made self-signed CA certificate as PEM.
func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
