package routerostest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// MaxWordLength bounds a word the emulator accepts. The encoding allows up
// to 2^32-1 bytes; a real command is a few hundred bytes, and an unbounded
// length would let one bad length prefix allocate gigabytes.
const MaxWordLength = 1 << 20

// maxSentenceWords bounds the words of one sentence for the same reason.
const maxSentenceWords = 1024

var (
	// ErrControlByte is a length prefix starting with a reserved byte (>= 0xF8).
	ErrControlByte = errors.New("reserved control byte in word length")
	// ErrWordTooLong is a word longer than MaxWordLength.
	ErrWordTooLong = errors.New("word longer than the limit")
	// ErrTooManyWords is a sentence with more than maxSentenceWords words.
	ErrTooManyWords = errors.New("sentence with too many words")
)

// AppendLength appends the RouterOS encoding of a word length: 1 byte below
// 0x80, 2 below 0x4000, 3 below 0x200000, 4 below 0x10000000, else 0xF0 and
// 4 bytes.
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

// AppendSentence appends words and the terminating empty word.
func AppendSentence(dst []byte, words ...string) []byte {
	for _, w := range words {
		dst = AppendLength(dst, uint32(len(w)))
		dst = append(dst, w...)
	}
	return append(dst, 0)
}

// DecodeLength reads a length prefix from b: the length and the bytes used.
// It returns io.ErrUnexpectedEOF when b is too short. The length is a
// uint32 so a 5-byte prefix cannot turn negative in a 32-bit int.
func DecodeLength(b []byte) (n uint32, used int, err error) {
	if len(b) == 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	c := b[0]
	var extra int
	switch {
	case c&0x80 == 0:
		return uint32(c), 1, nil
	case c&0xC0 == 0x80:
		n, extra = uint32(c&0x3F), 1
	case c&0xE0 == 0xC0:
		n, extra = uint32(c&0x1F), 2
	case c&0xF0 == 0xE0:
		n, extra = uint32(c&0x0F), 3
	case c == 0xF0:
		n, extra = 0, 4
	default:
		return 0, 0, fmt.Errorf("%w 0x%02x", ErrControlByte, c)
	}
	if len(b) < 1+extra {
		return 0, 0, io.ErrUnexpectedEOF
	}
	for _, x := range b[1 : 1+extra] {
		n = n<<8 | uint32(x)
	}
	return n, 1 + extra, nil
}

// DecodeSentence reads one sentence from the front of b, returning its words
// (without the terminating empty word) and the bytes it used. It returns
// io.ErrUnexpectedEOF when b holds no complete sentence.
func DecodeSentence(b []byte) (words []string, used int, err error) {
	for {
		n32, k, err := DecodeLength(b[used:])
		if err != nil {
			return nil, 0, err
		}
		if n32 > MaxWordLength {
			return nil, 0, fmt.Errorf("%w: %d bytes", ErrWordTooLong, n32)
		}
		n := int(n32)
		used += k
		if n == 0 {
			return words, used, nil
		}
		if len(b)-used < n {
			return nil, 0, io.ErrUnexpectedEOF
		}
		if len(words) == maxSentenceWords {
			return nil, 0, ErrTooManyWords
		}
		words = append(words, string(b[used:used+n]))
		used += n
	}
}

// ReadSentence reads one sentence from r. An empty sentence (a lone empty
// word) comes back as zero words; the API says to ignore it.
func ReadSentence(r *bufio.Reader) ([]string, error) {
	var words []string
	var hdr [5]byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			if len(words) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		hdr[0] = c
		extra := 0
		switch {
		case c&0x80 == 0:
		case c&0xC0 == 0x80:
			extra = 1
		case c&0xE0 == 0xC0:
			extra = 2
		case c&0xF0 == 0xE0:
			extra = 3
		case c == 0xF0:
			extra = 4
		}
		if extra > 0 {
			if _, err := io.ReadFull(r, hdr[1:1+extra]); err != nil {
				return nil, noEOF(err)
			}
		}
		n32, _, err := DecodeLength(hdr[:1+extra])
		if err != nil {
			return nil, err
		}
		if n32 == 0 {
			return words, nil
		}
		if n32 > MaxWordLength {
			return nil, fmt.Errorf("%w: %d bytes", ErrWordTooLong, n32)
		}
		n := int(n32)
		if len(words) == maxSentenceWords {
			return nil, ErrTooManyWords
		}
		w := make([]byte, n)
		if _, err := io.ReadFull(r, w); err != nil {
			return nil, noEOF(err)
		}
		words = append(words, string(w))
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
