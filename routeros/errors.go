package routeros

import (
	"errors"
	"fmt"
)

var (
	// ErrNotConnected is returned while waiting out the backoff after a
	// failed dial; it wraps the last error.
	ErrNotConnected = errors.New("not connected")
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("router client stopped")
	// ErrNotFound is an object that is not (or no longer) on the router.
	ErrNotFound = errors.New("not on the router")
	// ErrNotManaged is an object without the flowshield comment: never
	// touched.
	ErrNotManaged = errors.New("object is not flowshield's")
	// ErrMalformedReply is a reply that breaks the API's framing (a
	// reserved control byte where a word length starts); the connection is
	// closed.
	ErrMalformedReply = errors.New("malformed reply from the router")
)

// TrapError is the router refusing a command (!trap); the connection stays.
// A refused /login is a LoginError instead.
type TrapError struct {
	Command  string
	Message  string
	Category string
}

func (e *TrapError) Error() string {
	return fmt.Sprintf("router refused %s: %s", e.Command, e.Message)
}

// IsTrap says whether err is the router refusing a command, as opposed to
// a lost or timed-out connection.
func IsTrap(err error) bool {
	var t *TrapError
	return errors.As(err, &t)
}

func isNoSuchItem(err error) bool {
	var t *TrapError
	return errors.As(err, &t) && t.Message == "no such item"
}

// rejectedReply says whether err is a reply the client refused to read.
func rejectedReply(err error) bool {
	var e *ReplyTooLargeError
	return errors.As(err, &e) || errors.Is(err, ErrMalformedReply)
}

// LoginError is a connection that was opened but did not end logged in.
// Either the router answered /login with !trap or !fatal (Refused, with
// the router's Message: a wrong user or password, a user without the api
// policy), or the login did not complete (Err: the connection closed, the
// reply did not come in time, or it was not an API reply, as from another
// service on the port). It never carries the password.
type LoginError struct {
	Address string // host:port
	User    string
	Refused bool
	Message string // the router's words, when Refused
	Err     error  // why the login did not complete, when not Refused
}

func (e *LoginError) Error() string {
	if e.Refused {
		return fmt.Sprintf("log in to %s as %q: refused: %s", e.Address, e.User, e.Message)
	}
	return fmt.Sprintf("log in to %s as %q: %v", e.Address, e.User, e.Err)
}

func (e *LoginError) Unwrap() error { return e.Err }

// ReplyTooLargeError is a reply over one of Configuration.Limits: the
// client closes the connection before it reads, or go-routeros allocates,
// the part over the limit.
type ReplyTooLargeError struct {
	// Limit is the ReplyLimits field that was exceeded: "WordBytes",
	// "ReplyWords" or "ReplyBytes".
	Limit string
	// Size is the word's announced length (WordBytes) or the reply's count
	// once over the limit (ReplyWords, ReplyBytes).
	Size, Max int64
}

func (e *ReplyTooLargeError) Error() string {
	var what string
	switch e.Limit {
	case "WordBytes":
		what = fmt.Sprintf("a word of %d bytes", e.Size)
	case "ReplyWords":
		what = fmt.Sprintf("%d words so far", e.Size)
	default:
		what = fmt.Sprintf("%d bytes of words so far", e.Size)
	}
	return fmt.Sprintf("reply too large: %s, over the limit of %d (ReplyLimits.%s)", what, e.Max, e.Limit)
}
