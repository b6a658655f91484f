package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowshield/flowshield/appliance"
	"github.com/flowshield/flowshield/detect"
	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

const checkPassword = "Pa55-check-secret"

// emulatorFor starts an emulated router whose user is in group (seeded
// first when it is not one of the defaults), its flow export set up as the
// setup script does (1s timers, an IPFIX target).
func emulatorFor(t *testing.T, group, policy string, tlsCfg *tls.Config) *routerostest.Server {
	t.Helper()
	return startEmulator(t, group, policy, tlsCfg, "", setUpFlows)
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

// startEmulator starts an emulated router running RouterOS version
// (default: 7.18.2), prepared by prepare before it listens.
func startEmulator(t *testing.T, group, policy string, tlsCfg *tls.Config, version string, prepare func(*testing.T, *routerostest.Server)) *routerostest.Server {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
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
	return l.Addr().String()
}

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "router"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestCheckRouterAccess(t *testing.T) {
	full := emulatorFor(t, "full", "", nil)
	readOnly := emulatorFor(t, "read", "", nil)
	writer := emulatorFor(t, "write", "", nil)
	noAPI := emulatorFor(t, "noapi", "local,read,write,!api", nil)
	tlsEmu := emulatorFor(t, "full", "", &tls.Config{Certificates: []tls.Certificate{selfSignedCert(t)}})
	unreachable := closedPort(t)
	silent := silentServer(t)

	tests := []struct {
		name      string
		addrs     []string
		actions   []appliance.Action
		password  string
		tls       bool
		insecure  bool
		timeout   time.Duration
		want      []string // substrings, one problem line each, in order
		wantLog   []string // substrings of the log
		wantNoLog string
	}{
		{name: "full user", addrs: []string{full.Addr()}, actions: []appliance.Action{appliance.ActionAddressList},
			wantLog: []string{"version=\"7.18.2 (stable)\"", "board=RB5009UG+S+", "router access is sufficient"}},
		{name: "read-only group with address-list", addrs: []string{readOnly.Addr()}, actions: []appliance.Action{appliance.ActionAddressList},
			want:    []string{"router " + readOnly.Addr() + `: the group of user "flowshield" lacks the write policy; ACTION=address-list needs api, read, write`},
			wantLog: []string{"board=RB5009UG+S+"}, wantNoLog: "sufficient"},
		{name: "read-only group with ACTION=none", addrs: []string{readOnly.Addr()}, actions: []appliance.Action{appliance.ActionNone},
			wantLog: []string{"router access is sufficient"}},
		{name: "write group with raw-drop and blackhole", addrs: []string{writer.Addr()},
			actions: []appliance.Action{appliance.ActionRawDrop, appliance.ActionBlackhole}},
		{name: "group without api", addrs: []string{noAPI.Addr()}, actions: []appliance.Action{appliance.ActionAddressList},
			want: []string{"router " + noAPI.Addr() + `: logged in as "flowshield" but the router refused to read /system/resource`}},
		{name: "wrong password", addrs: []string{full.Addr()}, actions: []appliance.Action{appliance.ActionAddressList},
			password: "wrong-" + checkPassword,
			want:     []string{"router " + full.Addr() + `: login as "flowshield" failed: invalid user name or password`}},
		{name: "unreachable", addrs: []string{unreachable}, actions: []appliance.Action{appliance.ActionAddressList},
			want: []string{"router " + unreachable + ": cannot connect: connect: connection refused"}},
		{name: "silent", addrs: []string{silent}, actions: []appliance.Action{appliance.ActionAddressList}, timeout: time.Second,
			want: []string{"router " + silent + `: connected but the login as "flowshield" did not complete`}},
		{name: "self-signed TLS", addrs: []string{tlsEmu.Addr()}, actions: []appliance.Action{appliance.ActionAddressList}, tls: true,
			want: []string{"router " + tlsEmu.Addr() + ": cannot connect: the router's TLS certificate is not trusted"}},
		{name: "self-signed TLS insecure", addrs: []string{tlsEmu.Addr()}, actions: []appliance.Action{appliance.ActionAddressList},
			tls: true, insecure: true, wantLog: []string{"tls=true"}},
		{name: "one of two routers down", addrs: []string{full.Addr(), unreachable}, actions: []appliance.Action{appliance.ActionAddressList},
			want: []string{"router " + unreachable + ": cannot connect"}, wantLog: []string{"address=" + full.Addr()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := appliance.Configuration{
				Actions: tc.actions, RouterOSAddresses: tc.addrs, RouterOSUser: "flowshield",
				RouterOSPassword: checkPassword, RouterOSTLS: tc.tls, RouterOSTLSInsecure: tc.insecure,
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
			problems := checkRouterAccess(ctx, cfg, log)
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

// TestCheckCommandWrongPassword runs `flowshield check` itself against the
// emulator: exit 1, the problem on stderr, the password nowhere.
func TestCheckCommandWrongPassword(t *testing.T) {
	emu := emulatorFor(t, "full", "", nil)
	const wrong = "Wrong-Secret-123"
	var out, errOut bytes.Buffer
	c := cli{
		environ: map[string]string{
			"FLOWSHIELD_NETWORKS":          "203.0.113.0/24",
			"FLOWSHIELD_ACTION":            "address-list",
			"FLOWSHIELD_ROUTEROS_ADDRESS":  emu.Addr(),
			"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
			"FLOWSHIELD_ROUTEROS_PASSWORD": wrong,
			"FLOWSHIELD_LOG_LEVEL":         "debug",
		},
		stdout: &out, stderr: &errOut,
		checkRouters: checkRouterAccess,
	}
	code := c.main(context.Background(), []string{"check"})
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut.String(), "router "+emu.Addr()+`: login as "flowshield" failed`) {
		t.Errorf("stderr does not name the login failure:\n%s", errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), wrong) {
		t.Errorf("the password appears in the output:\nstdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	}

	// The right password: exit 0.
	c.environ["FLOWSHIELD_ROUTEROS_PASSWORD"] = checkPassword
	out.Reset()
	errOut.Reset()
	if code := c.main(context.Background(), []string{"check"}); code != exitOK {
		t.Errorf("exit %d with the right password; stderr:\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "RB5009UG+S+") {
		t.Errorf("the router's board is not reported:\n%s", errOut.String())
	}
	if strings.Contains(out.String()+errOut.String(), checkPassword) {
		t.Errorf("the password appears in the output")
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
			emu := startEmulator(t, group, "", nil, tc.version, tc.prepare)
			cfg := appliance.Configuration{
				Actions: []appliance.Action{appliance.ActionNone}, RouterOSAddresses: []string{emu.Addr()},
				RouterOSUser: "flowshield", RouterOSPassword: checkPassword,
			}
			var logBuf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			problems := checkRouterAccess(ctx, cfg, log)
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

// TestCheckCommandFlowExport: slow timers warn and exit 0; a router that
// exports nothing exits 1.
func TestCheckCommandFlowExport(t *testing.T) {
	slow := startEmulator(t, "full", "", nil, "", func(t *testing.T, emu *routerostest.Server) {
		setUpFlows(t, emu)
		emu.SetTrafficFlow(map[string]string{"active-flow-timeout": "1m", "inactive-flow-timeout": "1m"})
	})
	off := startEmulator(t, "full", "", nil, "", nil)
	for _, tc := range []struct {
		addr, want string
		code       int
	}{
		{slow.Addr(), "level=WARN msg=\"router " + slow.Addr() + ": traffic-flow timers active-flow-timeout=1m inactive-flow-timeout=1m delay detection", exitOK},
		{off.Addr(), "router " + off.Addr() + ": traffic-flow is disabled and has no target", exitFailure},
	} {
		var out, errOut bytes.Buffer
		c := cli{
			environ: map[string]string{
				"FLOWSHIELD_NETWORKS":          "203.0.113.0/24",
				"FLOWSHIELD_ACTION":            "address-list",
				"FLOWSHIELD_ROUTEROS_ADDRESS":  tc.addr,
				"FLOWSHIELD_ROUTEROS_USER":     "flowshield",
				"FLOWSHIELD_ROUTEROS_PASSWORD": checkPassword,
			},
			stdout: &out, stderr: &errOut,
			checkRouters: checkRouterAccess,
		}
		if code := c.main(context.Background(), []string{"check"}); code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr:\n%s", tc.addr, code, tc.code, errOut.String())
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("stderr does not say %q:\n%s", tc.want, errOut.String())
		}
	}
}
