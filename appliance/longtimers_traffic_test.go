//go:build linux

package appliance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// ltPkt is one packet of the traffic, built into a frame when sent.
type ltPkt struct {
	at           time.Duration // from the start of the run
	src, dst     [4]byte
	sport, dport uint16
	size         uint16 // IPv4 total length
	proto        uint8  // 6 or 17
	flags        uint8  // TCP flags
	flood        bool
}

type ltTraffic struct {
	pkts   []ltPkt
	flood  uint64 // flood packets
	longIn uint64 // packets to the long-flow hosts
	busyIn uint64 // queries to the busy DNS server
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpACK = 0x10
)

// ltPlan builds the traffic, the same every run:
//   - a UDP flood to ltVictim from ltFloodStart to ltFloodEnd at ltFloodPPS
//     from random sources in 198.18.0.0/15 and random ports (every packet a
//     flow of its own, as spoofed floods are);
//   - long flows for the whole run (68 s, more than the active timeout):
//     8 flows to each long-flow host at ltLongPPS, 200 pps a host, a tenth of
//     the threshold: TCP to .20:443 and .22:22 with the hosts' ACKs back at
//     10 pps, UDP to .21:5004;
//   - a busy DNS server, ltBusy, with ltBusyPPS queries a second in (and as
//     many answers out), each a flow of one packet: 40% of the threshold;
//   - background: 20 short exchanges a second with .30-.39, DNS over UDP and
//     short TCP sessions (SYN to FIN, both ways) from 192.0.2.0/24.
func ltPlan() *ltTraffic {
	rng := rand.New(rand.NewPCG(1, 2))
	tr := &ltTraffic{}
	add := func(p ltPkt) { tr.pkts = append(tr.pkts, p) }
	v4 := func(a, b, c, d byte) [4]byte { return [4]byte{a, b, c, d} }

	// Flood.
	step := time.Second / ltFloodPPS
	for at := ltFloodStart; at < ltFloodEnd; at += step {
		add(ltPkt{at: at, src: v4(198, 18+byte(rng.IntN(2)), byte(rng.IntN(256)), byte(1+rng.IntN(254))),
			dst: ltVictim.As4(), sport: uint16(1024 + rng.IntN(64512)), dport: uint16(1 + rng.IntN(65535)),
			size: 60, proto: 17, flood: true})
		tr.flood++
	}

	// Long flows.
	for hi, h := range ltLongHosts {
		proto, dport := uint8(6), uint16(443)
		switch hi {
		case 1:
			proto, dport = 17, 5004
		case 2:
			dport = 22
		}
		for f := 0; f < 8; f++ {
			src := v4(198, 51, 100, byte(1+hi*8+f))
			sport := uint16(40000 + hi*100 + f)
			first := time.Duration(rng.IntN(400)) * time.Millisecond
			gap := time.Second / ltLongPPS
			for at := first; at < ltRun; at += gap {
				jit := time.Duration(rng.IntN(10)) * time.Millisecond
				add(ltPkt{at: at + jit, src: src, dst: h.As4(), sport: sport, dport: dport,
					size: uint16(300 + rng.IntN(300)), proto: proto, flags: tcpACK | tcpPSH})
				tr.longIn++
			}
			if proto == 6 {
				for at := first + 50*time.Millisecond; at < ltRun; at += time.Second / 10 {
					add(ltPkt{at: at, src: h.As4(), dst: src, sport: dport, dport: sport, size: 52, proto: 6, flags: tcpACK})
				}
			}
		}
	}

	// A busy DNS server: each query and its answer a flow of one packet.
	for at := 3 * time.Millisecond; at < ltRun-time.Second; at += time.Second / ltBusyPPS {
		c := v4(192, 0, 2, byte(1+rng.IntN(254)))
		cport := uint16(1024 + rng.IntN(64512))
		h := ltBusy.As4()
		add(ltPkt{at: at, src: c, dst: h, sport: cport, dport: 53, size: 72, proto: 17})
		add(ltPkt{at: at + 2*time.Millisecond, src: h, dst: c, sport: 53, dport: cport, size: 160, proto: 17})
		tr.busyIn++
	}

	// Background short flows.
	for i, at := 0, 10*time.Millisecond; at < ltRun-time.Second; i, at = i+1, at+50*time.Millisecond {
		h := v4(203, 0, 113, byte(30+i%10))
		c := v4(192, 0, 2, byte(1+rng.IntN(254)))
		cport := uint16(1024 + rng.IntN(64512))
		if i%2 == 0 {
			add(ltPkt{at: at, src: c, dst: h, sport: cport, dport: 53, size: 72, proto: 17})
			add(ltPkt{at: at + 20*time.Millisecond, src: h, dst: c, sport: 53, dport: cport, size: 180, proto: 17})
			continue
		}
		seq := []struct {
			in    bool
			flags uint8
			size  uint16
		}{
			{true, tcpSYN, 60}, {false, tcpSYN | tcpACK, 60}, {true, tcpACK, 52}, {true, tcpACK | tcpPSH, 400},
			{false, tcpACK | tcpPSH, 1200}, {true, tcpACK | tcpFIN, 52}, {false, tcpACK | tcpFIN, 52}, {true, tcpACK, 52},
		}
		for k, s := range seq {
			p := ltPkt{at: at + time.Duration(k)*20*time.Millisecond, src: c, dst: h, sport: cport, dport: 443,
				size: s.size, proto: 6, flags: s.flags}
			if !s.in {
				p.src, p.dst, p.sport, p.dport = h, c, 443, cport
			}
			add(p)
		}
	}
	sort.SliceStable(tr.pkts, func(i, j int) bool { return tr.pkts[i].at < tr.pkts[j].at })
	return tr
}

// frame builds p as an Ethernet frame into buf.
func (p *ltPkt) frame(buf []byte) []byte {
	n := 14 + int(p.size)
	b := buf[:n]
	clear(b)
	copy(b[0:6], ltDstMAC)
	copy(b[6:12], ltSrcMAC)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], p.size)
	ip[6] = 0x40 // DF
	ip[8], ip[9] = 64, p.proto
	copy(ip[12:16], p.src[:])
	copy(ip[16:20], p.dst[:])
	binary.BigEndian.PutUint16(ip[10:], ltChecksum(ip[:20], 0))
	l4 := ip[20:]
	binary.BigEndian.PutUint16(l4[0:], p.sport)
	binary.BigEndian.PutUint16(l4[2:], p.dport)
	pseudo := uint32(p.src[0])<<8 | uint32(p.src[1])
	pseudo += uint32(p.src[2])<<8 | uint32(p.src[3])
	pseudo += uint32(p.dst[0])<<8 | uint32(p.dst[1])
	pseudo += uint32(p.dst[2])<<8 | uint32(p.dst[3])
	pseudo += uint32(p.proto) + uint32(len(l4))
	switch p.proto {
	case 17:
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		binary.BigEndian.PutUint16(l4[6:], ltChecksum(l4, pseudo))
	case 6:
		binary.BigEndian.PutUint32(l4[4:], uint32(p.at/time.Millisecond)) // seq
		l4[12] = 5 << 4
		l4[13] = p.flags
		binary.BigEndian.PutUint16(l4[14:], 65535)
		binary.BigEndian.PutUint16(l4[16:], ltChecksum(l4, pseudo))
	}
	return b
}

func ltChecksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	return c
}

// ltSent is what ltSend did, in wall-clock time.
type ltSent struct {
	start, end           time.Time
	floodStart, floodEnd time.Time
	packets, flood       uint64
	err                  error
}

// ltSend sends the traffic at its real pace out of the namespace's end of
// the veth pair, from a packet socket opened in that namespace (on a thread
// of its own, which the runtime ends with this goroutine's return).
func ltSend(n ltNS, tr *ltTraffic) (s ltSent) {
	runtime.LockOSThread() // never unlocked: the thread stays in the namespace and dies
	f, err := os.Open("/run/netns/" + n.name)
	if err != nil {
		s.err = err
		return
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		s.err = fmt.Errorf("setns %s: %w", n.name, err)
		return
	}
	ifi, err := net.InterfaceByName(n.peer)
	if err != nil {
		s.err = fmt.Errorf("%s in %s: %w", n.peer, n.name, err)
		return
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // send only
	if err != nil {
		s.err = fmt.Errorf("packet socket: %w", err)
		return
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], ltDstMAC)
	buf := make([]byte, 2048)
	var failures int
	s.start = time.Now()
	for i := 0; i < len(tr.pkts); {
		now := time.Since(s.start)
		for ; i < len(tr.pkts) && tr.pkts[i].at <= now; i++ {
			p := &tr.pkts[i]
			if err := unix.Sendto(fd, p.frame(buf), 0, to); err != nil {
				if failures++; failures > 1000 || !errors.Is(err, unix.ENOBUFS) {
					s.err = fmt.Errorf("sendto: %w (%d failures)", err, failures)
					return
				}
				continue
			}
			s.packets++
			if p.flood {
				if s.flood == 0 {
					s.floodStart = time.Now()
				}
				s.flood++
				s.floodEnd = time.Now()
			}
		}
		if i < len(tr.pkts) {
			time.Sleep(min(tr.pkts[i].at-time.Since(s.start), 5*time.Millisecond))
		}
	}
	s.end = time.Now()
	return s
}
