package ratelimit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"time"
)

// Snapshot format, version 1:
//
//	"BWRL" 0x01                      magic and version
//	{ 0x01 key exp count }           one record per live key:
//	                                 key   uvarint length, then the bytes
//	                                 exp   uvarint (ns since the Unix epoch)
//	                                 count varint (-1 for a GCRA rate)
//	0x00                             end
//	crc32 (IEEE, big endian) of every byte before it
const (
	snapMagic   = "BWRL\x01"
	snapMaxKey  = 64 << 10
	recordByte  = 1
	endByte     = 0
	snapBufSize = 64 << 10
)

// Snapshot writes the live state (GCRA TATs and quota counters whose window
// has not ended, as of now) to w. Idle keys are left out: they restore to
// the same behaviour by their absence. Each shard is copied under its lock
// and written outside it, so Decide is blocked only briefly; the snapshot
// is consistent per key, not across keys. The caller writes it to a
// temporary file and renames it into place.
func (m *Memory) Snapshot(w io.Writer, now time.Time) error {
	t := clampNow(now.UnixNano())
	h := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), snapBufSize)
	var buf []byte
	if _, err := bw.WriteString(snapMagic); err != nil {
		return fmt.Errorf("ratelimit: write snapshot: %w", err)
	}
	for i := range m.shards {
		s := &m.shards[i]
		buf = buf[:0]
		s.mu.Lock()
		for _, e := range s.ents {
			if e.st.exp <= t {
				continue
			}
			buf = append(buf, recordByte)
			buf = binary.AppendUvarint(buf, uint64(len(e.key)))
			buf = append(buf, e.key...)
			buf = binary.AppendUvarint(buf, uint64(e.st.exp))
			buf = binary.AppendVarint(buf, e.st.count)
		}
		s.mu.Unlock()
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("ratelimit: write snapshot: %w", err)
		}
	}
	if err := bw.WriteByte(endByte); err != nil {
		return fmt.Errorf("ratelimit: write snapshot: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("ratelimit: write snapshot: %w", err)
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("ratelimit: write snapshot: %w", err)
	}
	return nil
}

// ErrBadSnapshot is wrapped by the errors of Restore for input that is not
// a complete, intact snapshot.
var ErrBadSnapshot = errors.New("not a valid rate limit snapshot")

// Restore reads a snapshot written by Snapshot and loads every key still
// live at now, replacing the state of keys already present. It reads and
// checks the whole snapshot first: on error nothing is loaded. The key
// bound applies as in Decide.
func (m *Memory) Restore(r io.Reader, now time.Time) error {
	t := clampNow(now.UnixNano())
	cr := &crcReader{r: bufio.NewReaderSize(r, snapBufSize), h: crc32.NewIEEE()}
	bad := func(what string) error { return fmt.Errorf("ratelimit: restore: %w: %s", ErrBadSnapshot, what) }

	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(cr, magic); err != nil || string(magic) != snapMagic {
		return bad("wrong header")
	}
	type record struct {
		key string
		st  state
	}
	var recs []record
	var key []byte
	for {
		kind, err := cr.ReadByte()
		if err != nil {
			return bad("truncated")
		}
		if kind == endByte {
			break
		}
		if kind != recordByte {
			return bad("unknown record")
		}
		n, err := binary.ReadUvarint(cr)
		if err != nil || n > snapMaxKey {
			return bad("bad key length")
		}
		if uint64(cap(key)) < n {
			key = make([]byte, n)
		}
		key = key[:n]
		if _, err := io.ReadFull(cr, key); err != nil {
			return bad("truncated key")
		}
		exp, err := binary.ReadUvarint(cr)
		if err != nil || exp > 1<<63-1 {
			return bad("bad time")
		}
		count, err := binary.ReadVarint(cr)
		if err != nil || count < gcraMark {
			return bad("bad count")
		}
		if int64(exp) > t {
			recs = append(recs, record{string(key), state{int64(exp), count}})
		}
	}
	sum := cr.h.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(cr.r, tail[:]); err != nil || binary.BigEndian.Uint32(tail[:]) != sum {
		return bad("checksum mismatch")
	}
	for _, rec := range recs {
		s := &m.shards[m.shardOf(rec.key)]
		s.mu.Lock()
		if j, ok := s.idx[rec.key]; ok {
			s.ents[j].st = rec.st
			s.touch(j)
		} else {
			s.insert(rec.key, rec.st, t, 0)
		}
		s.mu.Unlock()
	}
	return nil
}

// crcReader hashes what is read through it.
type crcReader struct {
	r *bufio.Reader
	h hash.Hash32
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	return n, err
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.h.Write([]byte{b})
	}
	return b, err
}
