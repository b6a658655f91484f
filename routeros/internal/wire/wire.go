// Package wire is the RouterOS API's word framing: the length prefix before
// every word. It is shared by the client, which checks what a router
// announces before go-routeros allocates it, and the emulator, so both read
// the same encoding.
package wire

import (
	"errors"
	"fmt"
	"io"
)

// ErrControlByte is a length prefix starting with a byte RouterOS reserves
// (0xF1 to 0xFF): no word length begins with one.
var ErrControlByte = errors.New("reserved control byte in word length")

// PrefixLen is the size of the length prefix that starts with first: 1 to 5
// bytes.
func PrefixLen(first byte) (int, error) {
	switch {
	case first&0x80 == 0:
		return 1, nil
	case first&0xC0 == 0x80:
		return 2, nil
	case first&0xE0 == 0xC0:
		return 3, nil
	case first&0xF0 == 0xE0:
		return 4, nil
	case first == 0xF0:
		return 5, nil
	}
	return 0, fmt.Errorf("%w 0x%02x", ErrControlByte, first)
}

// AppendLength appends the encoding of a word length: 1 byte below 0x80, 2
// below 0x4000, 3 below 0x200000, 4 below 0x10000000, else 0xF0 and 4 bytes.
func AppendLength(dst []byte, n uint32) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n < 0x4000:
		return append(dst, byte(n>>8)|0x80, byte(n))
	case n < 0x200000:
		return append(dst, byte(n>>16)|0xC0, byte(n>>8), byte(n))
	case n < 0x10000000:
		return append(dst, byte(n>>24)|0xE0, byte(n>>16), byte(n>>8), byte(n))
	default:
		return append(dst, 0xF0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// DecodeLength reads a length prefix from the front of b: the length and the
// bytes used. It returns io.ErrUnexpectedEOF when b is too short. The length
// is a uint32 so a 5-byte prefix cannot turn negative in a 32-bit int.
func DecodeLength(b []byte) (n uint32, used int, err error) {
	if len(b) == 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	size, err := PrefixLen(b[0])
	if err != nil {
		return 0, 0, err
	}
	if len(b) < size {
		return 0, 0, io.ErrUnexpectedEOF
	}
	// The first byte's bits below its marker (none left in 0xF0) are the
	// length's highest.
	n = uint32(b[0]) & (0xFF >> size)
	for _, x := range b[1:size] {
		n = n<<8 | uint32(x)
	}
	return n, size, nil
}
