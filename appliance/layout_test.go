package appliance

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDataPathImports holds the README's one-way data path: the stages
// before the decision (the record, the collector, the decoders, the
// detector) import nothing after them, and the wiring imports no test
// tooling (the emulator and the flow generator live in demo).
func TestDataPathImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	const mod = "github.com/flowshield/flowshield/"
	// telemetry/promtext (help texts for series) is a leaf every stage may use.
	later := []string{"mitigation", "routeros", "storage", "appliance", "notify", "web", "config", "api", "demo",
		"telemetry/graphite", "telemetry/hostmetrics", "telemetry/push"}
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"flow", later},
		{"flow/collector", later},
		{"flow/netflow", later},
		{"flow/sflow", later},
		{"detect", later},
		{"routeros", []string{"mitigation", "storage", "appliance", "notify", "web", "config", "api"}},
		{"storage", []string{"mitigation", "routeros", "appliance", "notify", "web", "config", "api"}},
		{"mitigation", []string{"appliance", "notify", "web", "config", "api"}},
		{"appliance", []string{"flow/flowgen", "routeros/routerostest", "demo"}},
	}
	for _, tt := range tests {
		out, err := exec.Command(goTool, "list", "-deps", mod+tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, mod)
			if !ok {
				continue
			}
			for _, f := range tt.forbidden {
				if rel == f || strings.HasPrefix(rel, f+"/") {
					t.Errorf("%s depends on %s", tt.pkg, rel)
				}
			}
		}
	}
}
