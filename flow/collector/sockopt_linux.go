//go:build linux

package collector

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"
)

// setReceiveBuffer asks for size bytes of socket receive buffer: first with
// SO_RCVBUFFORCE, which ignores net.core.rmem_max but needs CAP_NET_ADMIN,
// then with SO_RCVBUF. It returns what the kernel reports back, which is
// twice what it granted (the rest is for its bookkeeping), and whether the
// grant fell short of the request (net.core.rmem_max).
func setReceiveBuffer(sock *socket, size int) (effective int, capped bool, err error) {
	var opErr error
	ctlErr := sock.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size) != nil {
			// Unprivileged: SO_RCVBUF, which the kernel caps at rmem_max.
			if err := syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size); err != nil {
				opErr = fmt.Errorf("setting SO_RCVBUF to %d: %w", size, err)
			}
		}
		effective, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		if err != nil && opErr == nil {
			opErr = fmt.Errorf("reading SO_RCVBUF back: %w", err)
		}
	})
	if ctlErr != nil {
		return 0, false, fmt.Errorf("controlling socket: %w", ctlErr)
	}
	return effective, opErr == nil && effective < 2*size, opErr
}

// enableKernelDropCounter turns on SO_RXQ_OVFL: every datagram then carries
// the socket's count of datagrams the kernel dropped for lack of buffer.
func enableKernelDropCounter(sock *socket) bool {
	ok := false
	sock.Control(func(fd uintptr) {
		ok = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1) == nil
	})
	return ok
}

// parseKernelDrops finds the SO_RXQ_OVFL counter in a control message
// buffer without allocating (syscall.ParseSocketControlMessage allocates).
// The header is read field by field, so any alignment of oob is safe.
func parseKernelDrops(oob []byte) (uint32, bool) {
	const lenSize = int(unsafe.Sizeof(syscall.Cmsghdr{}.Len)) // 8 on 64-bit, 4 on 32-bit
	hdrLen := syscall.CmsgLen(0)
	for len(oob) >= hdrLen {
		var msgLen int
		if lenSize == 8 {
			msgLen = int(min(binary.NativeEndian.Uint64(oob), uint64(len(oob))+1))
		} else {
			msgLen = int(min(binary.NativeEndian.Uint32(oob), uint32(len(oob))+1))
		}
		if msgLen < hdrLen || msgLen > len(oob) {
			return 0, false
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if level == syscall.SOL_SOCKET && typ == syscall.SO_RXQ_OVFL && msgLen >= hdrLen+4 {
			return binary.NativeEndian.Uint32(oob[hdrLen:]), true
		}
		next := syscall.CmsgSpace(msgLen - hdrLen)
		if next > len(oob) {
			return 0, false
		}
		oob = oob[next:]
	}
	return 0, false
}

// receiveBufferOf reads the socket's receive buffer size (0 if unknown).
func receiveBufferOf(sock *socket) int {
	size := 0
	sock.Control(func(fd uintptr) {
		size, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	})
	return size
}
