package detect

import (
	"fmt"
	"math/rand"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/flow"
)

// TestPrefixTableLinear: a table of few prefixes (scanned as a list) and
// the same prefixes in a table too large for the list (per-length maps)
// answer every address alike.
func TestPrefixTableLinear(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	few := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("10.1.0.0/16"), // duplicate: the first wins
		netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("::ffff:172.16.0.0/108"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("2001:db8:1::/64"),
		netip.MustParsePrefix("2001:db8:1::1/128"), netip.MustParsePrefix("::/0"),
	}
	// Padding that matches none of the probes pushes both families past linearMax.
	many := append([]netip.Prefix(nil), few...)
	for i := 0; i < linearMax+1; i++ {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(i), 0}), 24),
			netip.PrefixFrom(netip.AddrFrom16([16]byte{0x3f, 0xff, byte(i)}), 48))
	}
	lin, maps := newPrefixTable(few), newPrefixTable(many)
	if lin.v4list == nil || lin.v6list == nil || maps.v4list != nil || maps.v6list != nil {
		t.Fatalf("modes: few v4list %v v6list %v, many v4list %v v6list %v", lin.v4list != nil, lin.v6list != nil, maps.v4list != nil, maps.v6list != nil)
	}
	probes := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.1.9.9"), netip.MustParseAddr("172.16.3.4"),
		netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("2001:db9::1"), {}}
	for i := 0; i < 2000; i++ {
		var b [16]byte
		rng.Read(b[:])
		switch i % 4 {
		case 0:
			probes = append(probes, netip.AddrFrom4([4]byte{10, 1, b[0] % 4, b[1]}))
		case 1:
			probes = append(probes, netip.AddrFrom4([4]byte(b[:4])))
		case 2:
			b[0], b[1], b[2], b[3], b[4] = 0x20, 0x01, 0x0d, 0xb8, 0
			b[5] = b[5] % 2
			probes = append(probes, netip.AddrFrom16(b))
		default:
			probes = append(probes, netip.AddrFrom16(b))
		}
	}
	for _, a := range probes {
		got, want := lin.lookup(a), maps.lookup(a)
		if got != want {
			t.Errorf("%v: list says %d, maps say %d", a, got, want)
		}
	}
	if got := lin.lookup(netip.MustParseAddr("10.1.0.1")); got != 1 {
		t.Errorf("duplicate prefix: index %d, want the first (1)", got)
	}
}

// refRates is the reference the column-space rates are held to: every
// slot expanded to a full vec, visited newest first.
func refRates(d *dirState, S, W int64, l *layout) (win, fast, prev vec) {
	// the windows wait as long as the ring's records came late
	late := max(int64(d.late), 1)
	oldest := S - W - late
	if d.slots == nil || d.head < oldest {
		return
	}
	var sums [winAligns]vec
	n := int64(l.nslots)
	for k := int64(0); k < n; k++ {
		sec := d.head - k
		if sec > S || sec < oldest {
			continue
		}
		var v vec
		s := d.slotFor(sec, l)
		for i, c := range l.col {
			if c >= 0 {
				v[i] = float64(s[c])
			}
		}
		fast.max(&v)
		// the window ending j seconds before the last second
		for j := int64(0); j <= late; j++ {
			if sec < S-j && sec >= S-j-W {
				sums[j].add(&v)
			}
		}
		if sec == S-1 {
			prev = v
		}
	}
	for i := range win {
		m := sums[0][i]
		for j := int64(1); j <= late; j++ {
			m = max(m, sums[j][i])
		}
		win[i] = m / float64(W)
	}
	return
}

// TestRatesAgainstReference: rates (column space, slots found from
// headSlot) equal the plain computation for random rings, layouts and
// evaluation seconds around the ring's head, and Tick's prevCols equals
// rates' prev.
func TestRatesAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for iter := 0; iter < 3000; iter++ {
		W := int64(1 + rng.Intn(8))
		var bitsNeeded [numCats]bool
		for c := range bitsNeeded {
			bitsNeeded[c] = rng.Intn(3) == 0
		}
		l := newLayout(ringSeconds(W), bitsNeeded)
		var d dirState
		base := int64(1_700_000_000 + rng.Intn(1000))
		if rng.Intn(5) != 0 {
			for j := 0; j < 1+rng.Intn(30); j++ {
				recv := base + int64(rng.Intn(12))
				end := recv*1e9 - rng.Int63n(3e9)
				n := norm{start: end - rng.Int63n(4e9), end: end, recvSec: recv, endSec: floorSec(end),
					pkts: float32(rng.Intn(5000)) / 3, bits: float32(rng.Intn(1 << 24)), mask: 1<<catAll | uint8(rng.Intn(64))}
				d.add(&n, &l)
			}
		}
		S := base + int64(rng.Intn(16)) - 2
		win, fast, prev := d.rates(S, W, &l)
		rw, rf, rp := refRates(&d, S, W, &l)
		if win != rw || fast != rf || prev != rp {
			t.Fatalf("iter %d (W %d, S-head %d): rates\nwin  %v\nwant %v\nfast %v\nwant %v\nprev %v\nwant %v",
				iter, W, S-d.head, win, rw, fast, rf, prev, rp)
		}
		var cp cvec
		var vp vec
		d.prevCols(S, W, &l, &cp)
		l.expand(&cp, &vp)
		if vp != rp {
			t.Fatalf("iter %d: prevCols %v, want %v", iter, vp, rp)
		}
	}
}

// TestAddTrafficColumns: the straight-line addTraffic puts a record in the
// same columns as a loop over every category.
func TestAddTrafficColumns(t *testing.T) {
	for _, needed := range [][numCats]bool{{}, {true, true, true, true, true, true}, {false, false, true, false, false, true}} {
		l := newLayout(3, needed)
		for mask := uint8(1); mask < 1<<numCats; mask += 2 { // catAll is always set
			got := make([]float32, l.width)
			want := make([]float32, l.width)
			l.addTraffic(got, mask, 3, 7, 1)
			for c := 0; c < numCats; c++ {
				if mask&(1<<c) != 0 {
					want[l.col[mPPS+c]] += 3
					if k := l.col[mBPS+c]; k >= 0 {
						want[k] += 7
					}
				}
			}
			want[l.col[mFlows]] += 1
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("needed %v mask %06b: %v, want %v", needed, mask, got, want)
			}
		}
	}
}

// TestConcurrentAttacks: host and hostgroup attacks whose samplers are
// fed by several consumers while Tick evaluates them and the attacks are
// read (meant for -race: a host's sampler relies on its shard's lock).
func TestConcurrentAttacks(t *testing.T) {
	cfg := testConfig()
	cfg.HostGroups = []HostGroup{{Name: "g", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")},
		Thresholds: cfg.Global, GroupPPS: 1000}}
	var nowNs atomic.Int64
	nowNs.Store(t0.UnixNano())
	e, err := New(cfg, func() time.Time { return time.Unix(0, nowNs.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	// The consumers go on until Tick has described an attack (so a loaded
	// machine, where they would finish before enough ticks, cannot fail
	// the test), at least 1,000 batches each and at most 200,000.
	var described atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			recs := make([]flow.Record, 24)
			for b := 0; b < 1000 || !described.Load() && b < 200000; b++ {
				now := nowNs.Load()
				for i := range recs {
					recs[i] = flow.Record{SrcAddr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + w)}),
						DstAddr:  netip.AddrFrom4([4]byte{10, 0, byte(i % 2), byte(b % 8)}),
						Received: now, Start: now - 9e8, End: now - 1e7, Packets: 50000, Bytes: 50000 * 300,
						Proto: flow.ProtoUDP, SrcPort: 53, DstPort: uint16(b)}
				}
				e.Consume(recs)
			}
		}(w)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	kinds := map[EventKind]int{}
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, ev := range e.Tick(time.Unix(0, nowNs.Add(int64(100*time.Millisecond)))) {
				kinds[ev.Kind]++
				if ev.Kind == AttackDetails {
					described.Store(true)
				}
			}
			for _, a := range e.Attacks(false) {
				e.Attack(a.ID)
			}
			e.Hosts(In, SortPPS, 5)
		}
	}()
	wg.Wait()
	close(stop)
	<-done
	if kinds[AttackStart] == 0 || kinds[AttackDetails] == 0 {
		t.Errorf("events %v: want attacks started and described", kinds)
	}
	groups := 0
	for _, a := range e.Attacks(false) {
		if a.Scope == ScopeGroup {
			groups++
		}
	}
	if groups == 0 {
		t.Error("no hostgroup attack")
	}
}

// TestSlotIndexPredictsAdd: the slot applyShard loads ahead of a record is
// the one add then writes, whenever the record lands in the ring.
func TestSlotIndexPredictsAdd(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, nslots := range []int{3, 7, 12, 62} {
		l := newLayout(nslots, [numCats]bool{})
		var d dirState
		sec := int64(1_790_000_000)
		for i := 0; i < 5000; i++ {
			// Arrival moves on by 0-3 seconds now and then, sometimes a
			// jump past the ring; records end up to a ring behind, or
			// (clock trouble) ahead.
			switch x := rng.Intn(100); {
			case x < 10:
				sec += int64(rng.Intn(4))
			case x == 10:
				sec += int64(nslots + rng.Intn(5))
			}
			endSec := sec - int64(rng.Intn(nslots+2)) + int64(rng.Intn(2))
			n := &norm{recvSec: sec, endSec: endSec, start: endSec*1e9 + 1, end: endSec*1e9 + 2, pkts: 1, bits: 8, mask: 1 << catAll}
			var guess int
			if d.slots != nil {
				guess = d.slotIndex(n.endSec, n.recvSec, &l)
			}
			before := append([]float32(nil), d.slots...)
			d.add(n, &l)
			if before == nil {
				continue
			}
			inRing := endSec <= d.head && endSec > d.head-int64(nslots)
			if !inRing {
				continue
			}
			// add wrote second endSec's slot (by the modulo, not by
			// headSlot): its packets grew by the record's one packet, from
			// zero if advancing cleared it.
			want := int(((endSec%int64(nslots))+int64(nslots))%int64(nslots)) * l.width
			c := want + int(l.col[mPPS+catAll])
			if got := d.slots[c]; got != before[c]+1 && got != 1 {
				t.Fatalf("nslots %d, step %d: slot %d has %v packets, had %v", nslots, i, want, got, before[c])
			}
			if guess != want {
				t.Fatalf("nslots %d, step %d: recv %d end %d: slotIndex %d, add wrote %d", nslots, i, sec, endSec, guess, want)
			}
		}
	}
}
