package routerostest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/go-routeros/routeros/v3/proto"

	"github.com/flowshield/flowshield/routeros/internal/wire"
)

func TestWordTooLong(t *testing.T) {
	// a 5-byte length above 2^31 must not turn negative on 32-bit ARM
	if _, _, err := DecodeSentence([]byte{0xF0, 0xFF, 0xFF, 0xFF, 0xF0}); !errors.Is(err, ErrWordTooLong) {
		t.Errorf("length 0xFFFFFFF0: %v, want too long", err)
	}
}

// The emulator's codec and go-routeros's must agree on both sides of each
// length boundary a word can reach.
func TestWireAgainstGoRouteros(t *testing.T) {
	for _, n := range []int{0x7F, 0x80, 0x3FFF, 0x4000, 0x10000} {
		word := "=k=" + strings.Repeat("x", n-3)
		var buf bytes.Buffer
		w := proto.NewWriter(&buf)
		w.BeginSentence()
		w.WriteWord("!re")
		w.WriteWord(word)
		if err := w.EndSentence(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		ours := AppendSentence(nil, "!re", word)
		if !bytes.Equal(buf.Bytes(), ours) {
			t.Fatalf("word of %#x bytes: go-routeros wrote % x..., we wrote % x...", n, buf.Bytes()[:8], ours[:8])
		}
		words, err := ReadSentence(bufio.NewReader(bytes.NewReader(ours)))
		if err != nil || !slices.Equal(words, []string{"!re", word}) {
			t.Fatalf("word of %#x bytes: read back %d words, %v", n, len(words), err)
		}
		r := proto.NewReader(bytes.NewReader(ours))
		sen, err := r.ReadSentence()
		r.Close()
		if err != nil || len(sen.Map["k"]) != n-3 {
			t.Fatalf("word of %#x bytes: go-routeros read %v", n, err)
		}
	}
}

func TestReadSentenceErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"eof", nil, io.EOF},
		{"truncated word", []byte{0x05, 'a', 'b'}, io.ErrUnexpectedEOF},
		{"truncated length", []byte{0xC0, 0x01}, io.ErrUnexpectedEOF},
		{"no end", AppendSentence(nil, "/x")[:3], io.ErrUnexpectedEOF},
		{"control byte", []byte{0xF9}, wire.ErrControlByte},
		{"too long", wire.AppendLength(nil, MaxWordLength+1), ErrWordTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSentence(bufio.NewReader(bytes.NewReader(tc.in)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if len(tc.in) > 0 {
				if _, _, err := DecodeSentence(tc.in); err == nil {
					t.Fatal("DecodeSentence accepted it")
				}
			}
		})
	}
}

func FuzzDecodeSentence(f *testing.F) {
	f.Add(AppendSentence(nil, "/login", "=name=admin", "=password=x", ".tag=1"))
	f.Add(AppendSentence(nil, "/ip/firewall/address-list/print", "?list=a", "?list=b", "?#|"))
	f.Add([]byte{0x80, 0x80})
	f.Add([]byte{0xF0, 0x10, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		words, used, err := DecodeSentence(b)
		if err != nil {
			return
		}
		if used > len(b) {
			t.Fatalf("used %d of %d bytes", used, len(b))
		}
		again, _, err := DecodeSentence(AppendSentence(nil, words...))
		if err != nil || !slices.Equal(words, again) {
			t.Fatalf("round trip: %q -> %q (%v)", words, again, err)
		}
		streamed, err := ReadSentence(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || !slices.Equal(words, streamed) {
			t.Fatalf("ReadSentence disagrees: %q vs %q (%v)", streamed, words, err)
		}
	})
}

func BenchmarkDecodeSentence(b *testing.B) {
	s := AppendSentence(nil, "!re", "=.id=*1A", "=list=flowshield-in", "=address=192.0.2.1", "=timeout=9m58s", "=comment=flowshield a1 udp_flood", ".tag=3")
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, _, err := DecodeSentence(s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sentence")
}
