package appliance

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/config"
)

func TestBuildInfo(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "9.9.9"
	b := BuildInfo()
	if b.Version != "9.9.9" || b.GoVersion == "" || b.OS == "" || b.Arch == "" || b.Commit == "" {
		t.Errorf("%+v", b)
	}
}

// TestStartLogsWarnings: what the configuration warns about (here an
// unknown FLOWSHIELD_ variable) is logged when the daemon starts.
func TestStartLogsWarnings(t *testing.T) {
	cfg, err := config.FromEnv(map[string]string{
		"FLOWSHIELD_NETWORKS":       "203.0.113.0/24",
		"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0",
		"FLOWSHIELD_SFLOW_LISTEN":   "",
		"FLOWSHIELD_HTTP_LISTEN":    "",
		"FLOWSHIELD_DATA_DIR":       t.TempDir(),
		"FLOWSHIELD_EXPORTERS":      "192.0.2.1",
		"FLOWSHIELD_ESCALATE_AFTR":  "1m",
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer // the handler serializes its writes; read after Stop
	a, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`level=WARN msg="unknown variable FLOWSHIELD_ESCALATE_AFTR is ignored"`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start does not log %s:\n%s", want, logs.String())
		}
	}
	// Nothing was sent: nothing was refused (the shut-down socket's empty
	// read is not a datagram from anyone).
	if strings.Contains(logs.String(), "refusing flow datagrams") {
		t.Errorf("a refusal was logged with no datagram sent:\n%s", logs.String())
	}
}
