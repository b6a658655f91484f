// Connection handling: one goroutine per API connection reads sentences,
// applies the faults and writes the replies that commands.go builds.

package routerostest

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// conn is one API connection; user is set once /login succeeds.
type conn struct {
	nc       net.Conn
	user     string
	done     chan struct{}
	closeOne sync.Once
}

func (c *conn) close() {
	c.closeOne.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		c := &conn{nc: nc, done: make(chan struct{})}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.serve(c)
	}
}

func (s *Server) serve(c *conn) {
	defer s.wg.Done()
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c.nc)
	for {
		words, err := ReadSentence(br)
		if err != nil {
			return
		}
		if len(words) == 0 {
			continue // the API says to ignore empty sentences
		}
		if !s.handle(c, words) {
			return
		}
	}
}

// request is a parsed command sentence.
type request struct {
	command string
	tag     string
	attrs   map[string]string
	queries []string
}

// handshake says whether the command is part of logging in as flowshield
// does it: /login, then the version read (a /system/resource print of
// .proplist=version) that decides the syntax of what follows.
func (r request) handshake() bool {
	return r.command == "/login" || r.command == MenuResource+"/print" && r.attrs[".proplist"] == "version"
}

func parseRequest(words []string) request {
	r := request{command: words[0], attrs: map[string]string{}}
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, ".tag="):
			r.tag = w[len(".tag="):]
		case strings.HasPrefix(w, "="):
			k, v, _ := strings.Cut(w[1:], "=")
			r.attrs[k] = v
		case strings.HasPrefix(w, "?"):
			r.queries = append(r.queries, w[1:])
		}
	}
	return r
}

// reply accumulates the sentences answering one command.
type reply struct {
	tag string
	buf []byte
}

func (r *reply) sentence(words ...string) {
	if r.tag != "" {
		words = append(words, ".tag="+r.tag)
	}
	r.buf = AppendSentence(r.buf, words...)
}

func (r *reply) trap(message string) {
	r.sentence("!trap", "=message="+message)
	r.sentence("!done")
}

// handle answers one command; false closes the connection.
func (s *Server) handle(c *conn, words []string) bool {
	req := parseRequest(words)
	rep := &reply{tag: req.tag}

	s.mu.Lock()
	if len(s.commands) < maxCommandLog {
		s.commands = append(s.commands, req.command)
	}
	var fault *Fault
	if c.user != "" || req.command == "/login" {
		fault = s.takeFaultLocked(req.command, req.handshake())
	}
	s.mu.Unlock()

	if c.user == "" && req.command != "/login" {
		c.nc.Write(AppendSentence(nil, "!fatal", "not logged in"))
		return false
	}
	if fault != nil {
		switch fault.Kind {
		case DropBeforeApply:
			return false
		case Trap:
			msg := fault.Message
			if msg == "" {
				msg = "failure: injected"
			}
			rep.trap(msg)
			_, err := c.nc.Write(rep.buf)
			return err == nil
		case Fatal:
			msg := fault.Message
			if msg == "" {
				msg = "session terminated"
			}
			c.nc.Write(AppendSentence(nil, "!fatal", msg))
			return false
		}
	}

	keep := s.execute(c, req, rep)

	if fault != nil {
		switch fault.Kind {
		case DropAfterApply:
			return false
		case Stall:
			t := time.NewTimer(fault.Duration)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return false
			}
		}
	}
	if _, err := c.nc.Write(rep.buf); err != nil {
		return false
	}
	return keep
}
