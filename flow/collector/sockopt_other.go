//go:build !linux

package collector

import "fmt"

// setReceiveBuffer asks for size bytes of socket receive buffer; outside
// Linux the effective size is not read back and is reported as requested.
func setReceiveBuffer(sock *socket, size int) (effective int, capped bool, err error) {
	if err := sock.conn.SetReadBuffer(size); err != nil {
		return 0, false, fmt.Errorf("setting receive buffer to %d: %w", size, err)
	}
	return size, false, nil
}

func enableKernelDropCounter(*socket) bool { return false }

func parseKernelDrops([]byte) (uint32, bool) { return 0, false }

func receiveBufferOf(*socket) int { return 0 }
