//go:build !linux

package collector

import (
	"fmt"
	"net"
)

// setReceiveBuffer asks for size bytes of socket receive buffer; outside
// Linux the effective size is not read back and is reported as requested.
func setReceiveBuffer(conn *net.UDPConn, size int) (effective int, capped bool, err error) {
	if err := conn.SetReadBuffer(size); err != nil {
		return 0, false, fmt.Errorf("setting receive buffer to %d: %w", size, err)
	}
	return size, false, nil
}

func enableKernelDropCounter(*net.UDPConn) bool { return false }

func parseKernelDrops([]byte) (uint32, bool) { return 0, false }
