//go:build linux

package collector

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// batchReader reads up to batchDatagrams datagrams with one recvmmsg(2),
// into slots it owns. A reader waking once for many datagrams, instead of
// once for each, is what keeps the daemon's CPU per record low: on a
// router every context switch is taken from forwarding.
type batchReader struct {
	sock  *socket
	msgs  []mmsghdr
	iovs  []syscall.Iovec
	names []syscall.RawSockaddrAny
	oob   []byte // oobSlot bytes per message, nil without SO_RXQ_OVFL
	bufs  []byte // maxDatagram bytes per message

}

// mmsghdr is struct mmsghdr: a msghdr and the length received. Go pads the
// struct to the alignment of Msghdr, as C does.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
}

const oobSlot = 64 // a SO_RXQ_OVFL control message needs 20 bytes

// canPoll says whether this platform's batchReader can poll without waiting.
const canPoll = true

func newBatchReader(sock *socket, slots int, withOOB bool) (*batchReader, error) {
	b := &batchReader{
		sock:  sock,
		msgs:  make([]mmsghdr, slots),
		iovs:  make([]syscall.Iovec, slots),
		names: make([]syscall.RawSockaddrAny, slots),
		bufs:  make([]byte, slots*maxDatagram),
	}
	if withOOB {
		b.oob = make([]byte, slots*oobSlot)
	}
	for i := range b.msgs {
		b.iovs[i].Base = &b.bufs[i*maxDatagram]
		b.iovs[i].SetLen(maxDatagram)
		h := &b.msgs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.Iovlen = 1
		if withOOB {
			h.Control = &b.oob[i*oobSlot]
		}
	}
	return b, nil
}

func (b *batchReader) slots() int { return len(b.msgs) }

// read receives what is waiting, up to slots() datagrams. With wait it
// blocks in the kernel until at least one arrives (the thread is parked,
// its P handed to others); without, it returns 0 when the socket is empty.
// After shutdown it returns net.ErrClosed.
func (b *batchReader) read(wait bool) (int, error) {
	for i := range b.msgs {
		h := &b.msgs[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(b.names[i]))
		if b.oob != nil {
			h.SetControllen(oobSlot)
		}
		h.Flags = 0
	}
	msgs, vlen := uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs))
	for {
		if b.sock.down.Load() {
			return 0, net.ErrClosed
		}
		var n uintptr
		var errno syscall.Errno
		if wait {
			// MSG_WAITFORONE: block for the first, then take what is there.
			n, _, errno = syscall.Syscall6(syscall.SYS_RECVMMSG, uintptr(b.sock.fd), msgs, vlen, msgWaitForOne, 0, 0)
		} else {
			// Never blocks, so the raw call (no scheduler hand-off, no
			// sysmon wake-up) is safe and cheaper.
			n, _, errno = syscall.RawSyscall6(syscall.SYS_RECVMMSG, uintptr(b.sock.fd), msgs, vlen, syscall.MSG_DONTWAIT, 0, 0)
		}
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return 0, nil
		case errno != 0:
			if b.sock.down.Load() {
				return 0, net.ErrClosed
			}
			return 0, fmt.Errorf("recvmmsg: %w", errno)
		case n == 0 && wait:
			continue // woken by shutdown: the loop reports it
		}
		return int(n), nil
	}
}

// msgWaitForOne is MSG_WAITFORONE (linux/socket.h), missing from syscall.
const msgWaitForOne = 0x10000

// datagram returns the i-th datagram read and its sender.
func (b *batchReader) datagram(i int) ([]byte, netip.Addr) {
	m := &b.msgs[i]
	payload := b.bufs[i*maxDatagram : i*maxDatagram+int(min(m.len, maxDatagram))]
	return payload, sockaddrAddr(&b.names[i])
}

// bytes is the payload size of the first n datagrams read.
func (b *batchReader) bytes(n int) int64 {
	var size int64
	for i := range n {
		size += int64(min(b.msgs[i].len, maxDatagram))
	}
	return size
}

// kernelDrops returns the socket's drop counter carried by the last
// datagram of the batch that had one.
func (b *batchReader) kernelDrops(n int) (uint32, bool) {
	if b.oob == nil {
		return 0, false
	}
	for i := n - 1; i >= 0; i-- {
		if l := int(b.msgs[i].hdr.Controllen); l > 0 {
			return parseKernelDrops(b.oob[i*oobSlot : i*oobSlot+min(l, oobSlot)])
		}
	}
	return 0, false
}

func sockaddrAddr(sa *syscall.RawSockaddrAny) netip.Addr {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		return netip.AddrFrom4((*syscall.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case syscall.AF_INET6:
		return netip.AddrFrom16((*syscall.RawSockaddrInet6)(unsafe.Pointer(sa)).Addr).Unmap()
	}
	return netip.Addr{}
}
