package flowgen

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// receiver counts what arrives on a loopback socket, decoding v9/IPFIX with
// goflow2 so records and packets are counted from the wire, not trusted.
type receiver struct {
	conn *net.UDPConn
	mu   sync.Mutex
	dg   uint64
	got  Counters
	errs int
	done chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(16 << 20)
	r := &receiver{conn: conn, done: make(chan struct{})}
	go r.loop()
	t.Cleanup(func() { conn.Close(); <-r.done })
	return r
}

func (r *receiver) loop() {
	defer close(r.done)
	ts := netflow.CreateTemplateSystem()
	buf := make([]byte, 65536)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p9 netflow.NFv9Packet
		var pfix netflow.IPFIXPacket
		err = netflow.DecodeMessageVersion(bytes.NewBuffer(buf[:n]), ts, &p9, &pfix)
		r.mu.Lock()
		r.dg++
		if err != nil {
			r.errs++
		}
		for _, s := range append(p9.FlowSets, pfix.FlowSets...) {
			ds, ok := s.(netflow.DataFlowSet)
			if !ok {
				continue
			}
			for _, rec := range ds.Records {
				f := Flow{SamplingRate: 1}
				for _, v := range rec.Values {
					switch v.Type {
					case fieldInPkts:
						f.Packets = beUint(v.Value.([]byte))
					case fieldInBytes:
						f.Bytes = beUint(v.Value.([]byte))
					}
				}
				r.got.add(&f)
			}
		}
		r.mu.Unlock()
	}
}

func (r *receiver) snapshot() (uint64, Counters, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dg, r.got, r.errs
}

// waitFor waits (bounded) until the receiver has n datagrams.
func (r *receiver) waitFor(n uint64) {
	for i := 0; i < 200; i++ {
		if dg, _, _ := r.snapshot(); dg >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSenderPacedLoopback(t *testing.T) {
	rx := newReceiver(t)
	cfg := DefaultSenderConfiguration()
	cfg.Target = rx.conn.LocalAddr().String()
	cfg.Encoder.Format = FormatRouterOSV9
	cfg.RecordsPerSecond = 10000
	cfg.Count = 15000 // a second and a half
	cfg.Duration = 10 * time.Second
	cfg.HostPrefix = netip.MustParsePrefix("203.0.113.0/24")
	s, err := NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	tot, err := s.Run(context.Background())
	elapsed := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Records != 15000 || tot.SendErrors != 0 {
		t.Fatalf("sent %d records (%d errors), want exactly 15000", tot.Records, tot.SendErrors)
	}
	// 10,000 in the first second, 5,000 spread over half the next: ~1.5 s.
	// Faster means the pacing is broken; the upper bound only catches a
	// sender that stalls (a starved machine under -race can be slow).
	if elapsed < 1400*time.Millisecond || elapsed > 20*time.Second {
		t.Errorf("15,000 records at 10,000/s took %v", elapsed)
	}
	rx.waitFor(tot.Datagrams)
	dg, got, errs := rx.snapshot()
	if errs != 0 {
		t.Fatalf("%d datagrams failed to decode", errs)
	}
	if dg != tot.Datagrams || got.Records != tot.Records || got.Packets != tot.Packets || got.Bytes != tot.Bytes {
		t.Fatalf("received %d datagrams %+v, sender claims %d datagrams %+v", dg, got, tot.Datagrams, tot.Counters)
	}
	if tot.Records/tot.Datagrams < 15 {
		t.Errorf("only %d records per datagram: batching is not filling datagrams", tot.Records/tot.Datagrams)
	}
	var perHost Counters
	for _, h := range tot.PerHost {
		perHost.addTimes(&h.In, 1)
		perHost.addTimes(&h.Out, 1)
	}
	if perHost != tot.Counters {
		t.Fatalf("per-host totals %+v do not add up to %+v", perHost, tot.Counters)
	}
}

func TestSenderStopsOnDurationAndContext(t *testing.T) {
	rx := newReceiver(t)
	cfg := DefaultSenderConfiguration()
	cfg.Target = rx.conn.LocalAddr().String()
	cfg.RecordsPerSecond = 1000
	cfg.Duration = 300 * time.Millisecond
	s, err := NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	tot, err := s.Run(context.Background())
	if d := time.Since(began); err != nil || d < 290*time.Millisecond || d > 10*time.Second {
		t.Fatalf("300 ms run: %v after %v", err, d)
	}
	if tot.Records < 100 || tot.Records > 400 {
		t.Errorf("%d records in 300 ms at 1000/s", tot.Records)
	}

	cfg.Duration = time.Hour
	s, _ = NewSender(cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began = time.Now()
	if _, err := s.Run(ctx); err != nil || time.Since(began) > 10*time.Second {
		t.Fatalf("cancelled run: %v after %v", err, time.Since(began))
	}
}

func TestSenderBlastLoopback(t *testing.T) {
	rx := newReceiver(t)
	cfg := DefaultSenderConfiguration()
	cfg.Target = rx.conn.LocalAddr().String()
	cfg.Encoder.Format = FormatRouterOSV9
	cfg.RecordsPerSecond = 10000
	cfg.Blast = true
	cfg.BlastDatagrams = 64
	cfg.BlastWorkers = 2
	cfg.Count = 20000
	cfg.Duration = 5 * time.Second
	s, err := NewSender(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tot, err := s.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tot.Records > 20000 || tot.Records < 20000-200 {
		t.Fatalf("blast sent %d records, want 20000 less at most one datagram per worker", tot.Records)
	}
	rx.waitFor(tot.Datagrams)
	dg, got, _ := rx.snapshot()
	// the receiver may lose datagrams under a blast, never get more
	if dg > tot.Datagrams || got.Records > tot.Records {
		t.Fatalf("received %d datagrams %d records, sender claims %d / %d", dg, got.Records, tot.Datagrams, tot.Records)
	}
	if d, r := s.Progress(); d != tot.Datagrams || r != tot.Records {
		t.Fatalf("progress %d/%d, totals %d/%d", d, r, tot.Datagrams, tot.Records)
	}
}

func TestSenderBadConfiguration(t *testing.T) {
	for name, mod := range map[string]func(*SenderConfiguration){
		"no target": func(c *SenderConfiguration) { c.Target = "" },
		"unbounded": func(c *SenderConfiguration) { c.Duration, c.Count = 0, 0 },
		"no rate":   func(c *SenderConfiguration) { c.RecordsPerSecond = 0 },
		"format":    func(c *SenderConfiguration) { c.Encoder.Format = 42 },
	} {
		cfg := DefaultSenderConfiguration()
		mod(&cfg)
		if _, err := NewSender(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
