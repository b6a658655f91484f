package notify

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The script runs with a clean environment: a real script dumps what it
// got, and none of flowshield's variables, secret or not, is there.
func TestScriptEnvironmentHasNoSecrets(t *testing.T) {
	secrets := map[string]string{
		"FLOWSHIELD_ROUTEROS_PASSWORD":      "router-secret-1",
		"FLOWSHIELD_API_TOKEN":              "api-token-2",
		"FLOWSHIELD_WEBHOOK_URL":            "http://127.0.0.1:9/hook/secret-3",
		"FLOWSHIELD_SLACK_WEBHOOK_URL":      "http://127.0.0.1:9/services/T/B/secret-4",
		"FLOWSHIELD_METRICS_PUSH_URL":       "http://user:secret-5@127.0.0.1:9/",
		"FLOWSHIELD_ROUTEROS_PASSWORD_FILE": "/run/secrets/secret-6",
		"FLOWSHIELD_API_TOKEN_FILE":         "/run/secrets/secret-7",
		"FLOWSHIELD_NETWORKS":               "203.0.113.0/24",
		"AWS_SECRET_ACCESS_KEY":             "secret-8", // not ours, not on the list either
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	kept := map[string]string{"LANG": "C.UTF-8", "TZ": "Europe/Paris", "LC_TIME": "C", "HOME": "/nonexistent-home"}
	for k, v := range kept {
		t.Setenv(k, v)
	}
	script := installScript(t, "env.sh")
	n := startNotifier(t, Configuration{Script: script})
	n.Notify(hostEvent(KindBan))
	if st := waitDone(t, n, scriptStats, 1); st.Failed != 0 {
		t.Fatalf("script failed: %+v", st)
	}
	dump := readFile(t, filepath.Join(filepath.Dir(script), "env"))
	got := map[string]string{}
	for line := range strings.Lines(dump) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}
	for k := range got {
		if strings.HasPrefix(k, "FLOWSHIELD_") || strings.HasSuffix(k, "_PASSWORD") || strings.HasSuffix(k, "_TOKEN") {
			t.Errorf("the script got %s", k)
		}
	}
	for k, v := range secrets {
		if strings.Contains(dump, v) {
			t.Errorf("the script's environment holds the value of %s", k)
		}
	}
	for k, v := range kept {
		if got[k] != v {
			t.Errorf("the script got %s=%q, want %q", k, got[k], v)
		}
	}
	if got["PATH"] == "" {
		t.Error("the script got no PATH")
	}
}

func TestScriptEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{"allowlist only",
			[]string{"PATH=/bin", "FLOWSHIELD_API_TOKEN=x", "LC_ALL=C", "https_proxy=http://proxy:3128", "TERM=xterm", "OLDPWD=/", "PATHX=1"},
			[]string{"PATH=/bin", "LC_ALL=C", "https_proxy=http://proxy:3128"}},
		{"no PATH: the default", []string{"HOME=/root", "junk"}, []string{"HOME=/root", "PATH=" + defaultPath}},
		{"empty", nil, []string{"PATH=" + defaultPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scriptEnv(tt.environ); !slices.Equal(got, tt.want) {
				t.Errorf("scriptEnv = %q, want %q", got, tt.want)
			}
		})
	}
}
