package notify

import (
	"encoding/json"
	"testing"
)

// BenchmarkNotify is the caller's cost per event with every sink enabled
// and the queues full (the worst case: all drops).
func BenchmarkNotify(b *testing.B) {
	n := New(Configuration{Script: "/bin/true", WebhookURL: "http://127.0.0.1:9/", SlackURL: "http://127.0.0.1:9/", QueueSize: 1}, nil)
	e := hostEvent(KindBan)
	b.ReportAllocs()
	for b.Loop() {
		n.Notify(e)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}

// BenchmarkEncode is the workers' encoding cost per event.
func BenchmarkEncode(b *testing.B) {
	e := hostEvent(KindAttackDetails)
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		w, _ := json.Marshal(e)
		s, _ := slackBody(e)
		bytes = len(w) + len(s)
	}
	b.ReportMetric(float64(bytes), "bytes/event")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}
