package wire

import (
	"errors"
	"io"
	"testing"
)

func TestLengthBoundaries(t *testing.T) {
	for _, tc := range []struct {
		n     uint32
		bytes int
		first byte
	}{
		{0, 1, 0x00}, {1, 1, 0x01}, {0x7F, 1, 0x7F},
		{0x80, 2, 0x80}, {0x3FFF, 2, 0xBF},
		{0x4000, 3, 0xC0}, {0x1FFFFF, 3, 0xDF},
		{0x200000, 4, 0xE0}, {0xFFFFFFF, 4, 0xEF},
		{0x10000000, 5, 0xF0}, {0xFFFFFFFF, 5, 0xF0},
	} {
		b := AppendLength(nil, tc.n)
		if len(b) != tc.bytes || b[0] != tc.first {
			t.Errorf("length %#x: encoded % x, want %d bytes starting %#x", tc.n, b, tc.bytes, tc.first)
		}
		if size, err := PrefixLen(b[0]); err != nil || size != tc.bytes {
			t.Errorf("length %#x: prefix of %d bytes (%v), want %d", tc.n, size, err, tc.bytes)
		}
		n, used, err := DecodeLength(b)
		if err != nil || n != tc.n || used != tc.bytes {
			t.Errorf("length %#x: decoded %#x (%d bytes, %v)", tc.n, n, used, err)
		}
		if _, _, err := DecodeLength(b[:len(b)-1]); len(b) > 1 && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("length %#x truncated: %v, want unexpected EOF", tc.n, err)
		}
	}
	for _, c := range []byte{0xF1, 0xF7, 0xF8, 0xFF} {
		if _, _, err := DecodeLength([]byte{c, 0, 0, 0, 0}); !errors.Is(err, ErrControlByte) {
			t.Errorf("%#x: %v, want control byte error", c, err)
		}
	}
}
