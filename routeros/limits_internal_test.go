package routeros

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	ros "github.com/go-routeros/routeros/v3"

	"github.com/flowshield/flowshield/routeros/internal/wire"
)

// readOnly is a reply stream as a connection that takes every write.
type readOnly struct{ io.Reader }

func (readOnly) Write(p []byte) (int, error) { return len(p), nil }
func (readOnly) Close() error                { return nil }

func appendSentence(b []byte, words ...string) []byte {
	for _, w := range words {
		b = wire.AppendLength(b, uint32(len(w)))
		b = append(b, w...)
	}
	return append(b, 0)
}

// TestBoundedConnSplitPrefixes: length prefixes of every size up to 4
// bytes, each byte of them delivered by a read of its own, are followed
// across reads and every byte passes unchanged.
func TestBoundedConnSplitPrefixes(t *testing.T) {
	var stream []byte
	var chunks []io.Reader
	for _, n := range []int{0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000} {
		for _, w := range []string{"!re", "=k=" + strings.Repeat("x", n-3), ""} {
			prefix := wire.AppendLength(nil, uint32(len(w)))
			for _, b := range prefix {
				chunks = append(chunks, bytes.NewReader([]byte{b}))
			}
			chunks = append(chunks, strings.NewReader(w))
			stream = append(append(stream, prefix...), w...)
		}
	}
	var rejected atomic.Uint64
	c := &boundedConn{ReadWriteCloser: readOnly{io.MultiReader(chunks...)},
		limits: ReplyLimits{WordBytes: 0x200000, ReplyWords: 18, ReplyBytes: 1 << 30}, rejected: &rejected}
	passed, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(passed, stream) || rejected.Load() != 0 {
		t.Fatalf("passed %d bytes of %d (%v), %d rejected", len(passed), len(stream), err, rejected.Load())
	}
	// the same reply, read again after a write, passes again
	c.ReadWriteCloser = readOnly{bytes.NewReader(stream)}
	c.Write([]byte{0})
	if got, err := io.ReadAll(c); err != nil || len(got) != len(stream) {
		t.Fatalf("second reply: %d bytes, %v", len(got), err)
	}
	// without the write it is one reply of twice the words
	c.ReadWriteCloser = readOnly{bytes.NewReader(stream)}
	var tooLarge *ReplyTooLargeError
	if _, err := io.ReadAll(c); !errors.As(err, &tooLarge) || tooLarge.Limit != "ReplyWords" || rejected.Load() != 1 {
		t.Fatalf("two replies without a command between: %v", err)
	}
}

// FuzzBoundedConn: whatever a router sends, what the filter passes on never
// holds a length over WordBytes or more words than ReplyWords, and what it
// refuses is counted once.
func FuzzBoundedConn(f *testing.F) {
	f.Add(appendSentence(nil, "!re", "=a=1"), 3)
	f.Add([]byte{0xF0, 0x10, 0, 0, 0}, 1)
	f.Add([]byte{0x80, 0x80, 0xC0}, 2)
	f.Add([]byte{0xF8}, 1)
	f.Add([]byte{0xE0, 0x20, 0, 0}, 4)
	limits := ReplyLimits{WordBytes: 64, ReplyWords: 16, ReplyBytes: 512}
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		chunk = max(1, min(chunk, 64))
		var rejected atomic.Uint64
		c := &boundedConn{ReadWriteCloser: readOnly{iotest.HalfReader(bytes.NewReader(stream))}, limits: limits, rejected: &rejected}
		var passed []byte
		buf := make([]byte, chunk)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			passed = append(passed, buf[:n]...)
		}
		var tooLarge *ReplyTooLargeError
		if refused := errors.As(err, &tooLarge) || errors.Is(err, ErrMalformedReply); refused != (rejected.Load() == 1) || rejected.Load() > 1 {
			t.Fatalf("error %v, %d counted", err, rejected.Load())
		}
		words, sum := int64(0), int64(0)
		for b := passed; len(b) > 0; {
			n, used, err := wire.DecodeLength(b)
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					break // a prefix cut by the end of the stream
				}
				t.Fatalf("passed a malformed prefix: %v", err)
			}
			words++
			sum += int64(n)
			if int64(n) > limits.WordBytes || words > limits.ReplyWords || sum > limits.ReplyBytes {
				t.Fatalf("passed word %d of %d bytes (%d in all)", words, n, sum)
			}
			b = b[min(len(b), used+int(n)):]
		}
	})
}

// BenchmarkReplyAtLimits reads, through go-routeros, a reply at each
// default limit: 65,535 address-list entries of six properties (the
// ReplyWords limit) and 31 words of 1 MiB (ReplyBytes). heap-MB is what the
// reply holds once read, alloc-MB what reading it allocated in all (mostly
// go-routeros's per-read copies, garbage at once): the figures behind
// DefaultReplyLimits. Run with -benchtime=1x; one reply takes seconds.
func BenchmarkReplyAtLimits(b *testing.B) {
	limits := DefaultReplyLimits()
	var entries []byte
	for i := range 65535 {
		entries = appendSentence(entries, "!re", fmt.Sprintf("=.id=*%X", i+1), "=list=flowshield-in",
			fmt.Sprintf("=address=10.%d.%d.%d", i>>16, i>>8&255, i&255), "=timeout=9m58s",
			"=comment=flowshield a1b2c3d4 udp_flood", "=disabled=false")
	}
	entries = appendSentence(entries, "!done")
	var big []byte
	for range 31 {
		big = appendSentence(big, "!re", "=k="+strings.Repeat("x", 1<<20-3))
	}
	big = appendSentence(big, "!done")
	for _, bc := range []struct {
		name   string
		stream []byte
	}{{"ReplyWords", entries}, {"ReplyBytes", big}} {
		b.Run(bc.name, func(b *testing.B) {
			var held, allocated uint64
			for b.Loop() {
				c := &boundedConn{ReadWriteCloser: readOnly{bytes.NewReader(bc.stream)}, limits: limits, rejected: new(atomic.Uint64)}
				client, _ := ros.NewClient(c)
				client.SetLogHandler(slog.DiscardHandler)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				reply, err := client.Run("/ip/firewall/address-list/print")
				runtime.GC()
				runtime.ReadMemStats(&after)
				if err != nil {
					b.Fatalf("a reply at the limits: %v", err)
				}
				held, allocated = after.HeapAlloc-before.HeapAlloc, after.TotalAlloc-before.TotalAlloc
				runtime.KeepAlive(reply)
				client.Close()
			}
			b.ReportMetric(float64(len(bc.stream))/1e6, "wire-MB")
			b.ReportMetric(float64(held)/1e6, "heap-MB")
			b.ReportMetric(float64(allocated)/1e6, "alloc-MB")
		})
	}
}
