package routeros

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/flowshield/flowshield/routeros/internal/wire"
)

// ReplyLimits bound what one reply from the router can make the client
// hold. go-routeros v3.0.1 allocates whatever length a word announces (up
// to 4 GiB, twice over: its reader copies through a second buffer of the
// same size) and keeps every sentence of a reply until !done, so a
// compromised router, or anyone in the path of a plain-text API session,
// could otherwise exhaust the container's memory with one length prefix.
// The client reads through a filter that parses the framing and fails the
// connection (ReplyTooLargeError, Stats.RejectedReplies) before go-routeros
// sees a length over these limits.
type ReplyLimits struct {
	// WordBytes bounds one word. RouterOS words are an attribute each
	// (an address, a comment); default 1 MiB.
	WordBytes int64
	// ReplyWords bounds the words of one reply, the empty word ending each
	// sentence included. Default 524,288: 65,536 printed objects of six
	// properties, far more than flowshield's filtered prints return; such
	// a reply holds 54 MB of heap once read (go-routeros keeps about 100
	// bytes a word) and allocates 300 MB on the way.
	ReplyWords int64
	// ReplyBytes bounds the announced lengths of one reply's words summed.
	// Default 32 MiB, which hold 33 MB of heap once read. With ReplyWords,
	// one reply holds at most about 90 MB (BenchmarkReplyAtLimits).
	ReplyBytes int64
}

// DefaultReplyLimits are the limits New applies where Configuration.Limits
// leaves a zero.
func DefaultReplyLimits() ReplyLimits {
	return ReplyLimits{WordBytes: 1 << 20, ReplyWords: 1 << 19, ReplyBytes: 32 << 20}
}

// boundedConn is what go-routeros reads from and writes to: the connection
// with every byte read checked against the limits before it is passed on.
// A reply is what is read between two writes (go-routeros in sync mode
// sends a command, then reads its whole reply).
type boundedConn struct {
	io.ReadWriteCloser
	limits   ReplyLimits
	rejected *atomic.Uint64

	mu  sync.Mutex // go-routeros reads on a goroutine of its own
	err error      // sticky: the connection is done
	// the length prefix being read: its bytes so far and its size
	prefix     [5]byte
	got, size  int
	rest       int64 // bytes of the current word not yet read
	words, sum int64 // the current reply's words and their announced bytes
}

func (c *boundedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.ReadWriteCloser.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		if c.err = c.scan(p[:n]); c.err != nil {
			c.rejected.Add(1)
		}
	}
	if c.err != nil {
		// nothing of a bad chunk goes on, not even its good start: the
		// connection is closed anyway
		return 0, c.err
	}
	return n, err
}

func (c *boundedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.words, c.sum = 0, 0
	c.mu.Unlock()
	return c.ReadWriteCloser.Write(p)
}

// scan follows the framing through b: word bodies are skipped, length
// prefixes decoded (across reads) and checked.
func (c *boundedConn) scan(b []byte) error {
	for len(b) > 0 {
		if c.rest > 0 {
			k := min(c.rest, int64(len(b)))
			c.rest -= k
			b = b[k:]
			continue
		}
		if c.got == 0 {
			size, err := wire.PrefixLen(b[0])
			if err != nil {
				return fmt.Errorf("%w: %w", ErrMalformedReply, err)
			}
			c.size = size
		}
		k := copy(c.prefix[c.got:c.size], b)
		c.got += k
		b = b[k:]
		if c.got < c.size {
			continue
		}
		n32, _, err := wire.DecodeLength(c.prefix[:c.size])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformedReply, err)
		}
		c.got = 0
		n := int64(n32)
		c.words++
		c.sum += n
		switch {
		case n > c.limits.WordBytes:
			return &ReplyTooLargeError{Limit: "WordBytes", Size: n, Max: c.limits.WordBytes}
		case c.words > c.limits.ReplyWords:
			return &ReplyTooLargeError{Limit: "ReplyWords", Size: c.words, Max: c.limits.ReplyWords}
		case c.sum > c.limits.ReplyBytes:
			return &ReplyTooLargeError{Limit: "ReplyBytes", Size: c.sum, Max: c.limits.ReplyBytes}
		}
		c.rest = n
	}
	return nil
}
