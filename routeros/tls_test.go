package routeros_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// selfSigned is a certificate like a router's own: not from any CA.
func selfSigned(t *testing.T) tls.Certificate {
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

func TestTLS(t *testing.T) {
	emuCfg := routerostest.DefaultConfiguration()
	emuCfg.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	for _, tc := range []struct {
		name     string
		insecure bool
		wantErr  string
	}{
		{"verified", false, "certificate"},
		{"insecure", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, emuCfg, func(c *routeros.Configuration) {
				c.TLS, c.TLSInsecure = true, tc.insecure
				c.DialTimeout = 10 * time.Second
			})
			res, err := f.r.Resource(ctxT(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("self-signed certificate accepted without TLSInsecure: %v", err)
				}
				return
			}
			if err != nil || res["board-name"] != "CHR" {
				t.Fatalf("resource over TLS: %v %v", res, err)
			}
		})
	}
}

func TestFatalRedials(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Fatal, Message: "too many sessions"})
	_, err := f.r.Resource(ctx)
	if err == nil || routeros.IsTrap(err) || f.r.Connected() {
		t.Fatalf("after !fatal: %v, connected %v", err, f.r.Connected())
	}
	if _, err := f.r.Resource(ctx); err != nil {
		t.Fatalf("next call: %v", err)
	}
	if f.emu.Accepted() != 2 {
		t.Fatalf("%d connections, want 2", f.emu.Accepted())
	}
}

func TestPermissionsAndResource(t *testing.T) {
	for _, tc := range []struct {
		group     string
		wantWrite bool
	}{{"full", true}, {"read", false}} {
		t.Run(tc.group, func(t *testing.T) {
			emuCfg := routerostest.DefaultConfiguration()
			emuCfg.Group = tc.group
			f := setup(t, emuCfg, nil)
			ctx := ctxT(t)
			pol, err := f.r.Permissions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			has := map[string]bool{}
			for _, p := range pol {
				has[p] = true
			}
			if !has["api"] || !has["read"] || has["write"] != tc.wantWrite || has["!ftp"] {
				t.Fatalf("policies %v", pol)
			}
			res, err := f.r.Resource(ctx)
			if err != nil || !strings.HasPrefix(res["version"], "7.") || res["architecture-name"] == "" {
				t.Fatalf("resource %v %v", res, err)
			}
		})
	}
}
