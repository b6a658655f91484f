//go:build !linux

package collector

import (
	"net"
	"net/netip"
)

// batchReader outside Linux reads one datagram per call, always waiting:
// without recvmmsg and a non-blocking read there is nothing to poll with.
type batchReader struct {
	conn *net.UDPConn
	buf  []byte
	from netip.Addr
	n    int
}

const canPoll = false

func newBatchReader(sock *socket, _ int, _ bool) (*batchReader, error) {
	return &batchReader{conn: sock.conn, buf: make([]byte, maxDatagram)}, nil
}

func (b *batchReader) slots() int { return 1 }

func (b *batchReader) read(bool) (int, error) {
	n, _, _, from, err := b.conn.ReadMsgUDPAddrPort(b.buf, nil)
	if err != nil {
		return 0, err
	}
	b.n, b.from = n, from.Addr().Unmap()
	return 1, nil
}

func (b *batchReader) datagram(int) ([]byte, netip.Addr) { return b.buf[:b.n], b.from }

func (b *batchReader) bytes(n int) int64 { return int64(n * b.n) }

func (b *batchReader) kernelDrops(int) (uint32, bool) { return 0, false }
