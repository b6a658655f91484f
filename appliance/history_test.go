package appliance

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/config"
	"github.com/flowshield/flowshield/flow/collector"
)

// The attack list and an attack's details and flows survive a restart:
// the store's history is given back to the engine. An attack still active
// at the stop is listed as ended at the restart.
func TestAttackHistorySurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("sends flows")
	}
	dir := t.TempDir()
	start := func() *Appliance {
		t.Helper()
		cfg, err := config.FromEnv(map[string]string{
			"FLOWSHIELD_NETWORKS": "203.0.113.0/24", "FLOWSHIELD_WINDOW": "1s",
			"FLOWSHIELD_NETFLOW_LISTEN": "127.0.0.1:0", "FLOWSHIELD_SFLOW_LISTEN": "127.0.0.1:0",
			"FLOWSHIELD_HTTP_LISTEN": "127.0.0.1:0", "FLOWSHIELD_DATA_DIR": dir,
		})
		if err != nil {
			t.Fatal(err)
		}
		a, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a
	}
	stopped := map[*Appliance]bool{}
	stop := func(a *Appliance) {
		t.Helper()
		if stopped[a] {
			return
		}
		stopped[a] = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	a := start()
	victim := netip.MustParseAddr("203.0.113.66")
	if err := sendFlood(a.Collector().LocalAddr(collector.ProtocolNetFlow).String(), victim, 50000, 2*time.Second); err != nil {
		stop(a)
		t.Fatal(err)
	}
	type attack struct {
		ID      string           `json:"id"`
		IP      string           `json:"ip"`
		Type    string           `json:"type"`
		Started string           `json:"started_at"`
		Ended   *string          `json:"ended_at"`
		PeakPPS float64          `json:"peak_pps"`
		Details string           `json:"details"`
		Flows   []map[string]any `json:"flows"`
		// Fingerprint is "null" until known.
		Fingerprint json.RawMessage `json:"fingerprint"`
	}
	var before attack
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && before.Details == ""; time.Sleep(100 * time.Millisecond) {
		if at := a.Engine().Attacks(true); len(at) > 0 {
			_, body := apiCall(t, a, "GET", "/api/v1/attacks/"+at[0].ID, "", "")
			json.Unmarshal([]byte(body), &before)
		}
	}
	// Let one more tick write the history: the details event is saved
	// after the engine has published it.
	time.Sleep(1500 * time.Millisecond)
	stop(a)
	if before.Details == "" || len(before.Flows) == 0 || before.Ended != nil {
		t.Fatalf("no active attack with details and flows before the restart: %+v", before)
	}

	b := start()
	defer stop(b)
	code, body := apiCall(t, b, "GET", "/api/v1/attacks", "", "")
	var list []attack
	if code != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("attacks after restart: %d %s", code, body)
	}
	var found *attack
	for i := range list {
		if list[i].ID == before.ID {
			found = &list[i]
		}
	}
	if found == nil || found.Ended == nil || found.IP != before.IP || found.Type != before.Type ||
		found.Started != before.Started || found.PeakPPS < before.PeakPPS {
		t.Fatalf("after the restart the list is %s; want %s ended, as before otherwise", body, before.ID)
	}
	var after attack
	code, body = apiCall(t, b, "GET", "/api/v1/attacks/"+before.ID, "", "")
	if code != 200 || json.Unmarshal([]byte(body), &after) != nil {
		t.Fatalf("attack after restart: %d %s", code, body)
	}
	if after.Details != before.Details {
		t.Fatalf("details changed across the restart:\n%s\nwas\n%s", after.Details, before.Details)
	}
	if !reflect.DeepEqual(after.Flows, before.Flows) {
		t.Fatalf("flows changed across the restart:\n%v\nwas\n%v", after.Flows, before.Flows)
	}
	if !strings.Contains(string(before.Fingerprint), `"vectors":[{`) || string(after.Fingerprint) != string(before.Fingerprint) {
		t.Fatalf("fingerprint across the restart: %s, was %s", after.Fingerprint, before.Fingerprint)
	}
	// A second restart does not end it again or duplicate it.
	stop(b)
	c := start()
	defer stop(c)
	_, body = apiCall(t, c, "GET", "/api/v1/attacks", "", "")
	var again []attack
	json.Unmarshal([]byte(body), &again)
	n := 0
	for _, x := range again {
		if x.ID == before.ID {
			n++
			if x.Ended == nil || *x.Ended != *found.Ended {
				t.Fatalf("second restart: ended_at %v, was %v", x.Ended, *found.Ended)
			}
		}
	}
	if n != 1 {
		t.Fatalf("second restart lists %s %d times", before.ID, n)
	}
}
