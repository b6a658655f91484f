package container

import (
	"net/netip"
	"os"
	"testing"
)

// TestPrintScript prints a sample script: FLOWSHIELD_PRINT_SCRIPT=1 go test -run TestPrintScript ./container/
func TestPrintScript(t *testing.T) {
	if os.Getenv("FLOWSHIELD_PRINT_SCRIPT") == "" {
		t.Skip("set FLOWSHIELD_PRINT_SCRIPT=1 to print a sample script")
	}
	p := DefaultParams()
	p.APIPassword = "pa$s\"wo?rd"
	p.PasswordGenerated = true
	p.Actions = []string{"address-list", "blackhole"}
	p.BanDirections = []string{"in", "out"}
	p.Networks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/48")}
	p.Env = []Env{{"FLOWSHIELD_NETWORKS", "203.0.113.0/24,2001:db8::/48"}, {"FLOWSHIELD_WEBHOOK_URL", "https://x/y?a=$b"}}
	s, err := Script(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString(s)
}
