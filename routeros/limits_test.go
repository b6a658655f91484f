package routeros_test

import (
	"bufio"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/internal/wire"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// rawRouter is a router on loopback that answers each command (its first
// word, "/login" included) with the bytes reply gives, as they are.
func rawRouter(t *testing.T, reply func(command string) []byte) string {
	return loopbackServer(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			words, err := routerostest.ReadSentence(br)
			if err != nil || len(words) == 0 {
				return
			}
			if _, err := c.Write(reply(words[0])); err != nil {
				return
			}
		}
	})
}

// loginThen accepts the login and answers every other command with rest.
func loginThen(rest []byte) func(string) []byte {
	return func(command string) []byte {
		if command == "/login" {
			return routerostest.AppendSentence(nil, "!done")
		}
		return rest
	}
}

// sentences encodes each sentence, words separated by spaces.
func sentences(s ...string) []byte {
	var b []byte
	for _, x := range s {
		b = routerostest.AppendSentence(b, strings.Fields(x)...)
	}
	return b
}

// hugeWord starts a !re sentence with a word announcing n bytes and sends
// only its first few.
func hugeWord(n uint32) []byte {
	b := routerostest.AppendSentence(nil, "!re")
	b = wire.AppendLength(b[:len(b)-1], n)
	return append(b, "=comment="...)
}

func rawClient(t *testing.T, addr string, limits routeros.ReplyLimits) *routeros.Router {
	t.Helper()
	cfg := routeros.DefaultConfiguration()
	cfg.Address, cfg.User, cfg.Password = addr, "admin", "admin"
	cfg.CallTimeout = 10 * time.Second // a bound must fail at once, not by timing out
	cfg.Limits = limits
	r := routeros.New(cfg, nil)
	t.Cleanup(r.Stop)
	return r
}

// TestReplyLimits: a reply over a limit fails the call at once with a
// ReplyTooLargeError (a malformed one with ErrMalformedReply), closes the
// connection and is counted; a reply at every limit passes, and the
// counts start again with each reply.
func TestReplyLimits(t *testing.T) {
	w100 := "=n=" + strings.Repeat("x", 97)
	// 8 words (the empty word ending each sentence counts), 211 bytes
	atLimits := sentences("!re "+w100, "!re "+w100, "!done")
	limits := routeros.ReplyLimits{WordBytes: 100, ReplyWords: 8, ReplyBytes: 211}
	for _, tc := range []struct {
		name   string
		reply  func(string) []byte
		limits routeros.ReplyLimits
		want   *routeros.ReplyTooLargeError // nil: malformed
		login  bool
	}{
		{name: "word over", reply: loginThen(sentences("!re "+w100+"x", "!done")), limits: limits,
			want: &routeros.ReplyTooLargeError{Limit: "WordBytes", Size: 101, Max: 100}},
		{name: "words over", reply: loginThen(sentences("!re =a=1", "!re =a=2", "!re =a=3", "!done")), limits: limits,
			want: &routeros.ReplyTooLargeError{Limit: "ReplyWords", Size: 9, Max: 8}},
		{name: "bytes over", reply: loginThen(sentences("!re "+w100+" "+w100, "!re =a=123", "!done")), limits: limits,
			want: &routeros.ReplyTooLargeError{Limit: "ReplyBytes", Size: 212, Max: 211}},
		{name: "word of 4 GiB by default", reply: loginThen(hugeWord(0xFFFFFFFF)),
			want: &routeros.ReplyTooLargeError{Limit: "WordBytes", Size: 0xFFFFFFFF, Max: 1 << 20}},
		{name: "word of 1 GiB at login", login: true, reply: func(string) []byte { return hugeWord(1 << 30) },
			want: &routeros.ReplyTooLargeError{Limit: "WordBytes", Size: 1 << 30, Max: 1 << 20}},
		{name: "control byte", reply: loginThen(append(sentences("!re =a=1"), 0xF8)), limits: limits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawClient(t, rawRouter(t, tc.reply), tc.limits)
			t0 := time.Now()
			_, err := r.Resource(ctxT(t))
			if took := time.Since(t0); took > 2*time.Second {
				t.Fatalf("failed after %s: %v", took, err)
			}
			var tooLarge *routeros.ReplyTooLargeError
			if tc.want == nil {
				if !errors.Is(err, routeros.ErrMalformedReply) || errors.As(err, &tooLarge) {
					t.Fatalf("malformed reply: %v", err)
				}
			} else if !errors.As(err, &tooLarge) || *tooLarge != *tc.want {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var le *routeros.LoginError
			if errors.As(err, &le) != tc.login || routeros.IsTrap(err) {
				t.Fatalf("error %v (%T): a login error %v, want %v", err, err, !tc.login, tc.login)
			}
			if r.Connected() || r.Stats().RejectedReplies != 1 {
				t.Fatalf("connected %v, stats %+v", r.Connected(), r.Stats())
			}
		})
	}
	t.Run("at the limits", func(t *testing.T) {
		var calls atomic.Int32
		r := rawClient(t, rawRouter(t, func(command string) []byte {
			switch {
			case command == "/login":
				return sentences("!done")
			case calls.Add(1) <= 4: // the version read at login, then 3
				return atLimits
			}
			return sentences("!re =m=1", "!re "+w100, "!re", "!done") // 10 words, 118 bytes
		}), limits)
		for i := range 3 {
			res, err := r.Resource(ctxT(t))
			if err != nil || len(res["n"]) != 97 {
				t.Fatalf("reply %d at the limits: %v %v", i, res, err)
			}
		}
		if s := r.Stats(); s.RejectedReplies != 0 || s.Logins != 1 {
			t.Fatalf("stats %+v", s)
		}
		// words over on a connection that had worked: not asked again
		var tooLarge *routeros.ReplyTooLargeError
		if _, err := r.Resource(ctxT(t)); !errors.As(err, &tooLarge) || tooLarge.Limit != "ReplyWords" {
			t.Fatalf("one word over: %v", err)
		}
		if s := r.Stats(); s.RejectedReplies != 1 || s.Dials != 1 || calls.Load() != 5 {
			t.Fatalf("after one reply over: %d commands, stats %+v", calls.Load(), s)
		}
	})
}

// TestHugeWordNotAllocated: a router announcing a word of 1 GiB costs the
// client what a login and a call cost, not the gigabyte.
func TestHugeWordNotAllocated(t *testing.T) {
	r := rawClient(t, rawRouter(t, loginThen(hugeWord(1<<30))), routeros.ReplyLimits{})
	ctx := ctxT(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := r.Resource(ctx)
	runtime.ReadMemStats(&after)
	var tooLarge *routeros.ReplyTooLargeError
	if !errors.As(err, &tooLarge) {
		t.Fatalf("1 GiB word: %v", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("dial, login and a reply announcing a 1 GiB word: %d bytes allocated in all", allocated)
	if allocated > 1<<20 {
		t.Fatalf("allocated %d bytes", allocated)
	}
}
