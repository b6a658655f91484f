//go:build linux

package collector

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// socket is a UDP socket that the Go runtime's poller does not know about.
//
// Why not a net.UDPConn: a socket registered with the poller (epoll,
// edge-triggered) wakes a sleeping runtime thread for every datagram that
// arrives while no goroutine waits on it, which is exactly the time the
// reader spends sleeping between polls; measured at 200,000 records/s that
// was ~3,000 useless thread wake-ups a second. So the reader waits for
// traffic in a blocking recvmmsg(2) when the socket is idle (one thread
// parked in the kernel, no cost), and polls it without waiting when busy.
type socket struct {
	fd        int
	down      atomic.Bool
	closeOnce sync.Once
}

// listenUDP binds a UDP socket to address ("host:port"; an empty host is
// every address, IPv6 and IPv4, like net.ListenUDP).
func listenUDP(address string) (*socket, netip.AddrPort, error) {
	addr, err := net.ResolveUDPAddr("udp", address)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("resolving: %w", err)
	}
	var candidates []syscall.Sockaddr
	ip4 := addr.IP.To4()
	switch {
	case addr.IP == nil:
		// Dual stack, falling back to IPv4 where IPv6 is off.
		candidates = []syscall.Sockaddr{&syscall.SockaddrInet6{Port: addr.Port}, &syscall.SockaddrInet4{Port: addr.Port}}
	case ip4 != nil:
		sa := &syscall.SockaddrInet4{Port: addr.Port}
		copy(sa.Addr[:], ip4)
		candidates = []syscall.Sockaddr{sa}
	default:
		sa := &syscall.SockaddrInet6{Port: addr.Port}
		copy(sa.Addr[:], addr.IP.To16())
		if addr.Zone != "" {
			if ifi, err := net.InterfaceByName(addr.Zone); err == nil {
				sa.ZoneId = uint32(ifi.Index)
			}
		}
		candidates = []syscall.Sockaddr{sa}
	}
	var lastErr error
	for _, sa := range candidates {
		s, local, err := bindUDP(sa, addr.IP == nil || addr.IP.IsUnspecified())
		if err == nil {
			return s, local, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EAFNOSUPPORT) {
			break
		}
	}
	return nil, netip.AddrPort{}, lastErr
}

func bindUDP(sa syscall.Sockaddr, wildcard bool) (*socket, netip.AddrPort, error) {
	family := syscall.AF_INET
	if _, ok := sa.(*syscall.SockaddrInet6); ok {
		family = syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, netip.AddrPort{}, fmt.Errorf("creating socket: %w", err)
	}
	if family == syscall.AF_INET6 && wildcard {
		// Accept IPv4 too (as ::ffff:a.b.c.d), whatever net.ipv6.bindv6only says.
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			syscall.Close(fd)
			return nil, netip.AddrPort{}, fmt.Errorf("setting IPV6_V6ONLY: %w", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, netip.AddrPort{}, fmt.Errorf("binding: %w", err)
	}
	bound, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, netip.AddrPort{}, fmt.Errorf("reading the bound address: %w", err)
	}
	var local netip.AddrPort
	switch b := bound.(type) {
	case *syscall.SockaddrInet4:
		local = netip.AddrPortFrom(netip.AddrFrom4(b.Addr), uint16(b.Port))
	case *syscall.SockaddrInet6:
		local = netip.AddrPortFrom(netip.AddrFrom16(b.Addr), uint16(b.Port))
	}
	return &socket{fd: fd}, local, nil
}

// Control runs f on the socket's descriptor (setsockopt and the like).
func (s *socket) Control(f func(fd uintptr)) error {
	if s.down.Load() {
		return net.ErrClosed
	}
	f(uintptr(s.fd))
	return nil
}

// shutdown stops reading: a reader blocked in recvmmsg returns and every
// later read reports net.ErrClosed. The descriptor stays open (so its
// number cannot be reused under a reader) until close.
func (s *socket) shutdown() {
	if s.down.Swap(true) {
		return
	}
	// On an unconnected UDP socket this returns ENOTCONN but still marks
	// it shut and wakes blocked readers.
	_ = syscall.Shutdown(s.fd, syscall.SHUT_RDWR)
}

// close releases the descriptor; call it once no reader can use it.
func (s *socket) close() {
	s.shutdown()
	s.closeOnce.Do(func() { syscall.Close(s.fd) })
}
