package routerostest

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/flowshield/flowshield/routeros/internal/wire"
)

// MaxWordLength bounds a word the emulator accepts. The encoding allows up
// to 2^32-1 bytes; a real command is a few hundred bytes, and an unbounded
// length would let one bad length prefix allocate gigabytes.
const MaxWordLength = 1 << 20

// maxSentenceWords bounds the words of one sentence for the same reason.
const maxSentenceWords = 1024

var (
	// ErrWordTooLong is a word longer than MaxWordLength.
	ErrWordTooLong = errors.New("word longer than the limit")
	// ErrTooManyWords is a sentence with more than maxSentenceWords words.
	ErrTooManyWords = errors.New("sentence with too many words")
)

// AppendSentence appends words and the terminating empty word.
func AppendSentence(dst []byte, words ...string) []byte {
	for _, w := range words {
		dst = wire.AppendLength(dst, uint32(len(w)))
		dst = append(dst, w...)
	}
	return append(dst, 0)
}

// DecodeSentence reads one sentence from the front of b, returning its words
// (without the terminating empty word) and the bytes it used. It returns
// io.ErrUnexpectedEOF when b holds no complete sentence.
func DecodeSentence(b []byte) (words []string, used int, err error) {
	for {
		n32, k, err := wire.DecodeLength(b[used:])
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
		size, err := wire.PrefixLen(c)
		if err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, hdr[1:size]); err != nil {
			return nil, noEOF(err)
		}
		n32, _, err := wire.DecodeLength(hdr[:size])
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
