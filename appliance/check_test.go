package appliance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

const checkPassword = "Pa55-check-secret"

// checkEmulatorIn starts an emulated router whose user is in group (seeded
// first when it is not one of the defaults), its flow export set up as the
// setup script does (1s timers, an IPFIX target).
func checkEmulatorIn(t *testing.T, group, policy string, tlsCfg *tls.Config) *routerostest.Server {
	t.Helper()
	return checkEmulator(t, group, policy, tlsCfg, "", setUpFlows)
}

// setUpFlows is what the setup script does to traffic-flow.
func setUpFlows(t *testing.T, emu *routerostest.Server) {
	t.Helper()
	if err := emu.SetTrafficFlow(map[string]string{"enabled": "yes", "active-flow-timeout": "1s", "inactive-flow-timeout": "1s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.Seed(routerostest.MenuTrafficFlowTarget, map[string]string{
		"dst-address": "172.17.0.2", "port": "2055", "src-address": "172.17.0.1", "version": "IPFIX"}); err != nil {
		t.Fatal(err)
	}
}

// checkEmulator starts an emulated router running RouterOS version
// (default: 7.18.2), prepared by prepare before it listens.
func checkEmulator(t *testing.T, group, policy string, tlsCfg *tls.Config, version string, prepare func(*testing.T, *routerostest.Server)) *routerostest.Server {
	t.Helper()
	cfg := routerostest.DefaultConfiguration()
	cfg.User, cfg.Password, cfg.Group = "flowshield", checkPassword, group
	cfg.BoardName = "RB5009UG+S+"
	cfg.TLS = tlsCfg
	if version != "" {
		cfg.Version = version
	}
	if strings.HasPrefix(version, "6.") {
		cfg.MinActiveFlowTimeout = time.Minute // an old release
	}
	emu := routerostest.New(cfg)
	if policy != "" {
		if _, err := emu.Seed(routerostest.MenuUserGroup, map[string]string{"name": group, "policy": policy}); err != nil {
			t.Fatal(err)
		}
	}
	if prepare != nil {
		prepare(t, emu)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Stop)
	return emu
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l := silentServer(t)
	l.Close()
	return l.Addr().String()
}

// silentServer accepts connections on loopback and never answers.
func silentServer(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l
}

// selfSignedCert is a certificate like a router's own, from no CA: the one
// net/http/httptest serves TLS with (for 127.0.0.1).
func selfSignedCert() tls.Certificate {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	defer srv.Close()
	return srv.TLS.Certificates[0]
}

func TestCheckRouterAccess(t *testing.T) {
	full := checkEmulatorIn(t, "full", "", nil)
	readOnly := checkEmulatorIn(t, "read", "", nil)
	writer := checkEmulatorIn(t, "write", "", nil)
	noAPI := checkEmulatorIn(t, "noapi", "local,read,write,!api", nil)
	routerCert := selfSignedCert()
	tlsEmu := checkEmulatorIn(t, "full", "", &tls.Config{Certificates: []tls.Certificate{routerCert}})
	pin := routeros.Fingerprint(sha256.Sum256(routerCert.Certificate[0])).String()
	wrongPin := strings.Repeat("ab", sha256.Size)
	unreachable := closedPort(t)
	silent := silentServer(t).Addr().String()

	tests := []struct {
		name      string
		addrs     []string
		actions   []routeros.Action
		password  string
		tls       bool
		insecure  bool
		pin       string // ROUTEROS_TLS_FINGERPRINT
		timeout   time.Duration
		want      []string // substrings, one problem line each, in order
		wantLog   []string // substrings of the log
		wantNoLog string
	}{
		{name: "full user", addrs: []string{full.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			wantLog: []string{"version=\"7.18.2 (stable)\"", "board=RB5009UG+S+", "router access is sufficient"}},
		{name: "read-only group with address-list", addrs: []string{readOnly.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			want:    []string{"router " + readOnly.Addr() + `: the group of user "flowshield" lacks the write policy; ACTION=address-list needs api, read, write`},
			wantLog: []string{"board=RB5009UG+S+"}, wantNoLog: "sufficient"},
		{name: "read-only group with ACTION=none", addrs: []string{readOnly.Addr()}, actions: []routeros.Action{routeros.ActionNone},
			wantLog: []string{"router access is sufficient"}},
		{name: "write group with raw-drop and blackhole", addrs: []string{writer.Addr()},
			actions: []routeros.Action{routeros.ActionRawDrop, routeros.ActionBlackhole}},
		{name: "group without api", addrs: []string{noAPI.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			want: []string{"router " + noAPI.Addr() + `: logged in as "flowshield" but the router refused to read /system/resource`}},
		{name: "wrong password", addrs: []string{full.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			password: "wrong-" + checkPassword,
			want:     []string{"router " + full.Addr() + `: login as "flowshield" failed: invalid user name or password`}},
		{name: "unreachable", addrs: []string{unreachable}, actions: []routeros.Action{routeros.ActionAddressList},
			want: []string{"router " + unreachable + ": cannot connect: connect: connection refused"}},
		{name: "silent", addrs: []string{silent}, actions: []routeros.Action{routeros.ActionAddressList}, timeout: time.Second,
			want: []string{"router " + silent + `: connected but the login as "flowshield" did not complete`}},
		{name: "self-signed TLS", addrs: []string{tlsEmu.Addr()}, actions: []routeros.Action{routeros.ActionAddressList}, tls: true,
			want: []string{"router " + tlsEmu.Addr() + ": cannot connect: the router's TLS certificate is not trusted"}},
		{name: "self-signed TLS insecure", addrs: []string{tlsEmu.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			tls: true, insecure: true, wantLog: []string{"tls=true"}},
		{name: "self-signed TLS pinned", addrs: []string{tlsEmu.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			tls: true, pin: pin, wantLog: []string{"tls=true", "router access is sufficient"}},
		{name: "self-signed TLS wrong pin", addrs: []string{tlsEmu.Addr()}, actions: []routeros.Action{routeros.ActionAddressList},
			tls: true, pin: wrongPin,
			want: []string{"router " + tlsEmu.Addr() + ": cannot connect: the router's TLS certificate has fingerprint " + pin +
				", not FLOWSHIELD_ROUTEROS_TLS_FINGERPRINT's " + strings.Repeat("AB:", sha256.Size-1) + "AB"}},
		{name: "one of two routers down", addrs: []string{full.Addr(), unreachable}, actions: []routeros.Action{routeros.ActionAddressList},
			want: []string{"router " + unreachable + ": cannot connect"}, wantLog: []string{"address=" + full.Addr()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Configuration{
				Actions: tc.actions, RouterOSAddresses: tc.addrs, RouterOSUser: "flowshield",
				RouterOSPassword: checkPassword, RouterOSTLS: tc.tls, RouterOSTLSInsecure: tc.insecure,
				RouterOSTLSFingerprint: tc.pin,
			}
			if tc.password != "" {
				cfg.RouterOSPassword = tc.password
			}
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			timeout := 20 * time.Second
			if tc.timeout > 0 {
				timeout = tc.timeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			problems := CheckRouters(ctx, cfg, log)
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Errorf("the check took %v, past its %v bound", took, timeout)
			}
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(problems[i], w) {
					t.Errorf("problem %q does not say %q", problems[i], w)
				}
				if strings.Contains(problems[i], "\n") {
					t.Errorf("problem %q spans several lines", problems[i])
				}
			}
			logs := logBuf.String()
			for _, w := range tc.wantLog {
				if !strings.Contains(logs, w) {
					t.Errorf("log does not say %q:\n%s", w, logs)
				}
			}
			if tc.wantNoLog != "" && strings.Contains(logs, tc.wantNoLog) {
				t.Errorf("log says %q:\n%s", tc.wantNoLog, logs)
			}
			for _, out := range append([]string{logs}, problems...) {
				if strings.Contains(out, cfg.RouterOSPassword) || strings.Contains(out, checkPassword) {
					t.Errorf("the password appears in the output: %q", out)
				}
			}
		})
	}
}

// TestCheckFlowExport: what check says about the router's flow export.
// Long timers and hardware offloading are warnings (logged, no problem
// line); no export at all is a problem.
func TestCheckFlowExport(t *testing.T) {
	hysteresis := detect.DefaultConfiguration().EndAfter
	end := func(active, inactive time.Duration) string {
		return "up to " + routeros.FormatDuration(active+inactive+hysteresis) + " after the flood stops"
	}
	timers := func(active, inactive string) func(*testing.T, *routerostest.Server) {
		return func(t *testing.T, emu *routerostest.Server) {
			t.Helper()
			setUpFlows(t, emu)
			if err := emu.SetTrafficFlow(map[string]string{"active-flow-timeout": active, "inactive-flow-timeout": inactive}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name      string
		group     string
		version   string
		prepare   func(*testing.T, *routerostest.Server)
		want      []string // substrings, one problem line each, in order
		wantLog   []string
		wantNoLog []string
	}{
		{name: "1s/1s", prepare: setUpFlows,
			wantLog:   []string{`msg="traffic-flow export"`, `targets="172.17.0.2:2055 IPFIX"`, "active_flow_timeout=1s inactive_flow_timeout=1s", `detection="short and long floods detected within ~1-2 s"`},
			wantNoLog: []string{"level=WARN"}},
		{name: "1m/15s", prepare: timers("1m", "15s"),
			wantLog: []string{"level=WARN", "traffic-flow timers active-flow-timeout=1m inactive-flow-timeout=15s delay detection",
				"a flood of short flows (SYN, spoofed sources) is seen about 15s after it starts",
				"a flood of long flows (amplification) about 1m after it starts", end(time.Minute, 15*time.Second),
				"/ip/traffic-flow/set active-flow-timeout=1s inactive-flow-timeout=1s"}},
		{name: "30m/15s, the RouterOS defaults", prepare: timers("30m", "15s"),
			wantLog: []string{"level=WARN", "seen about 15s after it starts", "about 30m after it starts", end(30*time.Minute, 15*time.Second)}},
		{name: "traffic-flow disabled", prepare: func(t *testing.T, emu *routerostest.Server) {
			setUpFlows(t, emu)
			emu.SetTrafficFlow(map[string]string{"enabled": "no"})
		},
			want:      []string{"traffic-flow is disabled: flowshield sees no flows; run the setup script (flowshield routeros-script) or /ip/traffic-flow/set enabled=yes"},
			wantNoLog: []string{"level=WARN"}},
		{name: "a fresh router: disabled, no target, 30m/15s", want: []string{"traffic-flow is disabled and has no target: flowshield sees no flows"}},
		{name: "read-only group, disabled", group: "read", want: []string{"traffic-flow is disabled and has no target"}},
		{name: "L3 hardware offloading", prepare: func(t *testing.T, emu *routerostest.Server) {
			setUpFlows(t, emu)
			emu.Seed(routerostest.MenuSwitch, map[string]string{"name": "switch1", "type": "Marvell-98DX8216", "l3-hw-offloading": "yes"})
		},
			wantLog: []string{"level=WARN", "L3 hardware offloading is on for switch1: traffic the switch chip routes never reaches traffic-flow, so a flood through an offloaded path is invisible to flowshield"}},
		{name: "RouterOS 6 at 1m/15s", version: "6.49.10 (long-term)", prepare: func(t *testing.T, emu *routerostest.Server) {
			if err := emu.SetTrafficFlow(map[string]string{"enabled": "yes", "active-flow-timeout": "1m", "inactive-flow-timeout": "15s"}); err != nil {
				t.Fatal(err)
			}
			emu.Seed(routerostest.MenuTrafficFlowTarget, map[string]string{"address": "172.17.0.2:2055", "version": "9"})
			emu.Seed(routerostest.MenuSwitch, map[string]string{"name": "switch1", "type": "Atheros-8327"})
		},
			wantLog:   []string{`targets="172.17.0.2:2055 9"`, "about 1m after it starts", "/ip traffic-flow set active-flow-timeout=1s inactive-flow-timeout=1s (a RouterOS 6 release that refuses an active timeout under 60 s takes active-flow-timeout=1m"},
			wantNoLog: []string{"L3 hardware"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			group := tc.group
			if group == "" {
				group = "full"
			}
			emu := checkEmulator(t, group, "", nil, tc.version, tc.prepare)
			cfg := config.Configuration{
				Actions: []routeros.Action{routeros.ActionNone}, RouterOSAddresses: []string{emu.Addr()},
				RouterOSUser: "flowshield", RouterOSPassword: checkPassword,
			}
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			problems := CheckRouters(ctx, cfg, log)
			if len(problems) != len(tc.want) {
				t.Fatalf("problems %q, want %d like %q", problems, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(problems[i], "router "+emu.Addr()+": "+w) {
					t.Errorf("problem %q does not say %q", problems[i], w)
				}
			}
			logs := logBuf.String()
			for _, w := range tc.wantLog {
				if !strings.Contains(logs, w) {
					t.Errorf("log does not say %q:\n%s", w, logs)
				}
			}
			for _, w := range tc.wantNoLog {
				if strings.Contains(logs, w) {
					t.Errorf("log says %q:\n%s", w, logs)
				}
			}
			if strings.Count(logs, "\n") != strings.Count(logs, "time=") {
				t.Errorf("a log record spans several lines:\n%s", logs)
			}
		})
	}
}
