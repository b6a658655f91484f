//go:build !linux

package collector

import (
	"net"
	"net/netip"
)

// socket outside Linux is a net.UDPConn (see socket_linux.go for why Linux
// uses its own).
type socket struct {
	conn *net.UDPConn
}

func listenUDP(address string) (*socket, netip.AddrPort, error) {
	addr, err := net.ResolveUDPAddr("udp", address)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return &socket{conn: conn}, conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

func (s *socket) Control(f func(fd uintptr)) error {
	raw, err := s.conn.SyscallConn()
	if err != nil {
		return err
	}
	return raw.Control(f)
}

func (s *socket) shutdown() { s.conn.Close() }

func (s *socket) close() { s.conn.Close() }
