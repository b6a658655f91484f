// Fault injection: what a test makes the emulated router do wrong to the
// commands it receives (drop, stall, trap, !fatal).

package routerostest

import (
	"strings"
	"time"
)

// FaultKind is what an injected fault does to a command.
type FaultKind int

const (
	// DropBeforeApply closes the connection once the command is read,
	// without acting on it.
	DropBeforeApply FaultKind = iota + 1
	// DropAfterApply acts on the command, then closes without replying.
	DropAfterApply
	// Stall acts on the command, then holds its reply for Fault.Duration
	// (or until the connection is closed).
	Stall
	// Trap replies !trap with Fault.Message without acting.
	Trap
	// Fatal replies !fatal with Fault.Message without acting, then closes.
	Fatal
)

// Fault is injected into the commands the emulator receives.
type Fault struct {
	Kind FaultKind
	// Match restricts the fault to commands containing it ("/add",
	// "address-list/add"); empty matches every command but the login
	// handshake (/login and the version read that follows it).
	Match string
	// Skip lets that many matching commands through first.
	Skip int
	// Times is how many matching commands it hits; 0 means 1.
	Times    int
	Duration time.Duration
	Message  string
}

// Inject adds a fault; faults apply in the order they were added.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// DropAfter drops the connection at the command after the next n commands
// (before acting on it).
func (s *Server) DropAfter(n int) { s.Inject(Fault{Kind: DropBeforeApply, Skip: n}) }

// StallNext holds the replies of the next k commands for d.
func (s *Server) StallNext(k int, d time.Duration) {
	s.Inject(Fault{Kind: Stall, Times: k, Duration: d})
}

// TrapNext answers the next k commands with !trap message.
func (s *Server) TrapNext(k int, message string) {
	s.Inject(Fault{Kind: Trap, Times: k, Message: message})
}

func (s *Server) takeFaultLocked(command string, handshake bool) *Fault {
	for i, f := range s.faults {
		if f.Match == "" && handshake {
			continue
		}
		if !strings.Contains(command, f.Match) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			return nil
		}
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}
