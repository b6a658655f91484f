//go:build linux

package collector

import (
	"encoding/binary"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestKernelDropsCounted: while the reader is busy installing a slow
// template, a burst overflows a small socket buffer; the kernel's drops are
// reported (SO_RXQ_OVFL) and every datagram sent is accounted for.
func TestKernelDropsCounted(t *testing.T) {
	if os.Getenv("FLOWSHIELD_TEST_QEMU") == "1" {
		t.Skip("user-mode qemu emulates neither the socket's drop counter nor its timing")
	}
	cfg := testConfig()
	cfg.SFlowListen = ""
	cfg.ReceiveBuffer = 4096 // the kernel's minimum is about 4.5 KiB
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, NetFlowInOrder: fakeInOrder}, &countingConsumer{})
	conn := sender(t, "127.0.0.1", listenAddr(t, c, ProtocolNetFlow))
	send(t, conn, fakeDatagram(ProtocolNetFlow, 9, fakeSlowTmpl, 1, 0, 0, 0))
	payload := append(fakeDatagram(ProtocolNetFlow, 9, fakeData, 1, 1, 1, 1), make([]byte, 1000)...)
	sent := uint64(1)
	for range 200 {
		send(t, conn, payload)
		sent++
	}
	waitFor(t, 5*time.Second, "every datagram read or dropped", func() bool {
		// The drop count arrives with the next datagram read, and a
		// polling reader reads it within PollInterval.
		send(t, conn, payload)
		sent++
		time.Sleep(fakeSlow)
		s := c.Stats()
		return s.Datagrams+s.KernelDropped == sent
	})
	if s := c.Stats(); s.KernelDropped == 0 || s.Listeners[0].KernelDropped != s.KernelDropped {
		t.Errorf("kernel dropped %d (listener %d), want > 0 with a 4 KiB buffer", s.KernelDropped, s.Listeners[0].KernelDropped)
	}
}

func TestParseKernelDrops(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, syscall.CmsgSpace(len(data)))
		h := (*syscall.Cmsghdr)(unsafePointer(b))
		h.Level, h.Type = level, typ
		h.SetLen(syscall.CmsgLen(len(data)))
		copy(b[syscall.CmsgLen(0):], data)
		return b
	}
	drops := binary.NativeEndian.AppendUint32(nil, 12345)
	tests := []struct {
		name   string
		oob    []byte
		want   uint32
		wantOK bool
	}{
		{"alone", cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, drops), 12345, true},
		{"after another message", append(cmsg(syscall.SOL_IP, syscall.IP_TTL, []byte{64, 0, 0, 0}), cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, drops)...), 12345, true},
		{"other message only", cmsg(syscall.SOL_IP, syscall.IP_TTL, []byte{64, 0, 0, 0}), 0, false},
		{"truncated data", cmsg(syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, drops)[:syscall.CmsgLen(2)], 0, false},
		{"empty", nil, 0, false},
		{"short header", []byte{1, 2, 3}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseKernelDrops(tt.oob)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseKernelDrops = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

// TestReceiveBufferReported: the effective size is read back from the
// kernel (twice the grant on Linux); as root SO_RCVBUFFORCE grants it all.
func TestReceiveBufferReported(t *testing.T) {
	cfg := testConfig()
	cfg.ReceiveBuffer = 3 << 20
	c := startCollector(t, cfg, Decoders{NetFlow: &fakeDecoder{}, SFlow: &fakeDecoder{}}, &countingConsumer{})
	for _, l := range c.Stats().Listeners {
		switch {
		case l.ReceiveBufferRequested != cfg.ReceiveBuffer:
			t.Errorf("%s: requested %d, want %d", l.Protocol, l.ReceiveBufferRequested, cfg.ReceiveBuffer)
		case os.Geteuid() == 0 && l.ReceiveBuffer != 2*cfg.ReceiveBuffer:
			t.Errorf("%s: effective %d as root, want %d", l.Protocol, l.ReceiveBuffer, 2*cfg.ReceiveBuffer)
		case l.ReceiveBuffer <= 0 || l.ReceiveBuffer > 2*cfg.ReceiveBuffer:
			t.Errorf("%s: effective %d, want in (0, %d]", l.Protocol, l.ReceiveBuffer, 2*cfg.ReceiveBuffer)
		}
	}
}

// FuzzParseKernelDrops: any control message buffer is parsed without a
// panic or an endless loop.
func FuzzParseKernelDrops(f *testing.F) {
	drops := binary.NativeEndian.AppendUint32(nil, 7)
	b := make([]byte, syscall.CmsgSpace(4))
	h := (*syscall.Cmsghdr)(unsafePointer(b))
	h.Level, h.Type = syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL
	h.SetLen(syscall.CmsgLen(4))
	copy(b[syscall.CmsgLen(0):], drops)
	f.Add(b)
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, oob []byte) {
		parseKernelDrops(oob)
	})
}
