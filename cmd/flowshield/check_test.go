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
	"github.com/flowshield/flowshield/routeros/routerostest"
)

const checkPassword = "Pa55-check-secret"

// emulatorFor starts an emulated router whose user is in group (seeded
// first when it is not one of the defaults).
func emulatorFor(t *testing.T, group, policy string, tlsCfg *tls.Config) *routerostest.Server {
	t.Helper()
	cfg := routerostest.DefaultConfiguration()
	cfg.User, cfg.Password, cfg.Group = "flowshield", checkPassword, group
	cfg.BoardName = "RB5009UG+S+"
	cfg.TLS = tlsCfg
	emu := routerostest.New(cfg)
	if policy != "" {
		if _, err := emu.Seed(routerostest.MenuUserGroup, map[string]string{"name": group, "policy": policy}); err != nil {
			t.Fatal(err)
		}
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
