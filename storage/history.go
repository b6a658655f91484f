package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The attack history is two buckets under one key per attack (its start,
// then its ID, so the history iterates oldest first): the small part,
// rewritten at the start and the end, whose value starts with the end
// time for pruning without decoding, and the details, written once.

func attackKey(started time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(started.UnixNano()))
	return append(k, id...)
}

// attackHeader starts a value of the attacks bucket: the end, or zeros
// while the attack is active.
func attackHeader(ended time.Time) []byte {
	v := make([]byte, 8, 256)
	if !ended.IsZero() {
		binary.BigEndian.PutUint64(v, uint64(ended.UnixNano()))
	}
	return v
}

// decodeAttack reads a record of the attacks bucket: ID and start from
// the key, end from the value's first 8 bytes, the rest from its encoding.
func decodeAttack(k, v []byte) (AttackRecord, error) {
	if len(k) < 8 || len(v) < 8 {
		return AttackRecord{}, errors.New("record too short")
	}
	r, err := decodeSummary(v[8:])
	if err != nil {
		return AttackRecord{}, err
	}
	r.ID = string(k[8:])
	r.StartedAt = time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
	if e := binary.BigEndian.Uint64(v); e != 0 {
		r.EndedAt = time.Unix(0, int64(e)).UTC()
	}
	return r, nil
}

// SaveAttacks upserts attack records in one transaction and keeps the
// history within its bounds in the same commit (see trimPlan). A record
// that does not encode (a peak that is not a finite number) is left out
// and named in the error; the others are saved.
func (s *Store) SaveAttacks(ctx context.Context, records []AttackRecord) error {
	put := make(map[string][]byte, len(records))
	details := map[string][]byte{}
	var skipped []error
	for _, r := range records {
		k := string(attackKey(r.StartedAt, r.ID))
		v, err := encodeAttack(attackHeader(r.EndedAt), r)
		if err == nil && r.Details != nil {
			details[k], err = encodeDetails(r.Details)
		}
		if err != nil {
			delete(details, k)
			skipped = append(skipped, fmt.Errorf("not saving attack %s in %s: %w", r.ID, s.path, err))
			continue
		}
		put[k] = v
	}
	if len(put) == 0 {
		return errors.Join(skipped...)
	}
	var records0, bytes0 int64 // the history's count and bytes after the commit
	var trim *trimPlan
	err := s.update(ctx, "saving attacks",
		func(tx *bolt.Tx) bool {
			return batchChanges(tx.Bucket(bucketAttacks), put, nil) || batchChanges(tx.Bucket(bucketAttackDetails), details, nil)
		},
		func(tx *bolt.Tx) error {
			b, d := tx.Bucket(bucketAttacks), tx.Bucket(bucketAttackDetails)
			// Keys come in start order, so new records go at the end: full
			// pages, not bbolt's half-full default (twice the pages).
			b.FillPercent, d.FillPercent = historyFill, historyFill
			added, grown := putDelta(b, put)
			_, dgrown := putDelta(d, details)
			if err := applyBatch(b, put, nil); err != nil {
				return err
			}
			if err := applyBatch(d, details, nil); err != nil {
				return err
			}
			records0, bytes0, trim = s.attacks.Load()+added, s.historyBytes.Load()+grown+dgrown, nil
			// Walking the history costs a read of every record: only when
			// over the hard cap or the byte bound, or once a minute when past
			// the count that is always kept (age decides then).
			now := s.opts.Now().UnixNano()
			if records0 > int64(s.opts.HistoryMaxCount) || bytes0 > s.trimAt.Load() ||
				records0 > int64(s.opts.HistoryMinCount) && now-s.lastPrune.Load() >= int64(time.Minute) {
				p := s.planTrim(tx)
				if err := p.apply(tx); err != nil {
					return err
				}
				trim, records0, bytes0 = &p, p.records, p.bytes
			}
			return nil
		})
	if err == nil {
		s.attacks.Store(records0)
		s.historyBytes.Store(bytes0)
		if trim != nil {
			s.trimmed(*trim)
		}
	}
	return errors.Join(append(skipped, err)...)
}

// historyFill is the history buckets' page fill when a page splits.
const historyFill = 0.9

// putDelta is what putting put would add to bucket b: new keys, and bytes
// of keys and values.
func putDelta(b *bolt.Bucket, put map[string][]byte) (added, grown int64) {
	for k, v := range put {
		if old := b.Get([]byte(k)); old != nil {
			grown += int64(len(v) - len(old))
			continue
		}
		added++
		grown += int64(len(k) + len(v))
	}
	return added, grown
}

// PruneAttacks applies the history bounds now.
func (s *Store) PruneAttacks(ctx context.Context) error {
	var p trimPlan
	err := s.update(ctx, "pruning attacks",
		func(tx *bolt.Tx) bool { return s.planTrim(tx).changes() },
		func(tx *bolt.Tx) error {
			p = s.planTrim(tx)
			return p.apply(tx)
		})
	if err == nil && p.walked {
		s.attacks.Store(p.records)
		s.historyBytes.Store(p.bytes)
		s.trimmed(p)
	}
	return err
}

// trimPlan is what keeps the history within its bounds, in this order:
//
//  1. Age and count: oldest ended first, an ended attack goes when more
//     than HistoryMinCount remain and it ended before now-HistoryMinAge,
//     or when more than HistoryMaxCount remain.
//  2. Bytes (keys and values of both buckets), when over HistoryMaxBytes:
//     down to 7/8 of it (so that a storm walks the history once per
//     HistoryMaxBytes/8 written, not at every save), the ended attacks
//     beyond the HistoryMinCount most recently ended lose their details,
//     oldest ended first, then go whole, oldest ended first.
//
// Active attacks and the HistoryMinCount most recently ended are never
// touched by the byte bound, so the history's bytes stay under
// max(HistoryMaxBytes, theirs + HistoryMaxBytes/8).
type trimPlan struct {
	walked  bool
	evict   [][]byte // records to delete, with their details
	early   int      // of evict, those that ended within HistoryMinAge
	shed    [][]byte // details to delete, the records kept
	orphans [][]byte // details with no record
	records int64    // the history after the plan
	bytes   int64
}

func (p trimPlan) changes() bool { return len(p.evict)+len(p.shed)+len(p.orphans) > 0 }

func (p trimPlan) apply(tx *bolt.Tx) error {
	b, d := tx.Bucket(bucketAttacks), tx.Bucket(bucketAttackDetails)
	for _, k := range p.evict {
		if err := b.Delete(k); err != nil {
			return err
		}
		if err := d.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range slices.Concat(p.shed, p.orphans) {
		if err := d.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// trimmed counts a plan committed and sets when the next byte walk is
// due.
func (s *Store) trimmed(p trimPlan) {
	s.lastPrune.Store(s.opts.Now().UnixNano())
	s.evicted.Add(uint64(len(p.evict)))
	s.evictedEarly.Add(uint64(p.early))
	s.shed.Add(uint64(len(p.shed)))
	s.trimAt.Store(max(s.opts.HistoryMaxBytes, p.bytes+s.opts.HistoryMaxBytes/8))
}

// planTrim walks the history and plans what goes (see trimPlan). It also
// measures the history exactly, so the running figures cannot drift.
func (s *Store) planTrim(tx *bolt.Tx) trimPlan {
	b, d := tx.Bucket(bucketAttacks), tx.Bucket(bucketAttackDetails)
	p := trimPlan{walked: true}
	type cand struct {
		key   []byte
		ended int64
		size  int64 // the record's bytes, its details apart
	}
	var ended []cand
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		size := int64(len(k) + len(v))
		p.records++
		p.bytes += size
		switch {
		case len(v) < 8:
			ended = append(ended, cand{bytes.Clone(k), 0, size}) // undecodable: first to go
		case binary.BigEndian.Uint64(v) != 0:
			ended = append(ended, cand{bytes.Clone(k), int64(binary.BigEndian.Uint64(v)), size})
		}
	}
	c = d.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if b.Get(k) == nil {
			p.orphans = append(p.orphans, bytes.Clone(k))
			continue
		}
		p.bytes += int64(len(k) + len(v))
	}
	// Oldest ended first, so "the last N" means the most recently ended.
	sort.SliceStable(ended, func(i, j int) bool { return ended[i].ended < ended[j].ended })
	cutoff := s.opts.Now().Add(-s.opts.HistoryMinAge).UnixNano()
	evict := func(c cand, detailsBytes int64) {
		p.evict = append(p.evict, c.key)
		if c.ended >= cutoff {
			p.early++
		}
		p.records--
		p.bytes -= c.size + detailsBytes
	}
	detailsBytes := func(k []byte) int64 {
		if v := d.Get(k); v != nil {
			return int64(len(k) + len(v))
		}
		return 0
	}
	minCount, maxCount := int64(s.opts.HistoryMinCount), int64(s.opts.HistoryMaxCount)
	i := 0
	for ; i < len(ended) && p.records > minCount && (ended[i].ended < cutoff || p.records > maxCount); i++ {
		evict(ended[i], detailsBytes(ended[i].key))
	}
	if p.bytes <= s.opts.HistoryMaxBytes {
		return p
	}
	low := s.opts.HistoryMaxBytes - s.opts.HistoryMaxBytes/8
	rest := ended[i:max(i, len(ended)-int(minCount))] // beyond the most recently ended
	// Details first, oldest ended first.
	var shed []int // indexes in rest
	for j := 0; j < len(rest) && p.bytes > low; j++ {
		if n := detailsBytes(rest[j].key); n > 0 {
			shed = append(shed, j)
			p.bytes -= n
		}
	}
	// Then whole records: the shedding went through all of rest to get
	// here, so what each takes is its summary alone.
	evicted := 0
	for ; evicted < len(rest) && p.bytes > low; evicted++ {
		evict(rest[evicted], 0)
	}
	for _, j := range shed {
		if j >= evicted { // an evicted record is not counted as shed too
			p.shed = append(p.shed, rest[j].key)
		}
	}
	return p
}

// LoadAttacks returns the history, oldest start first. The newest
// withDetails records come with their details; older ones without, as a
// long history's details would not fit in memory. A record that does not
// decode is left out (its details too), counted in Stats.Undecodable and
// logged once per load.
func (s *Store) LoadAttacks(ctx context.Context, withDetails int) ([]AttackRecord, error) {
	var out []AttackRecord
	var bad int
	var firstErr error
	fail := func(k []byte, err error) {
		bad++
		if firstErr == nil {
			firstErr = fmt.Errorf("attack key %x: %w", k, err)
		}
	}
	err := s.view(ctx, "loading attacks", func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketAttacks).ForEach(func(k, v []byte) error {
			r, err := decodeAttack(k, v)
			if err != nil {
				fail(k, err)
				return nil
			}
			out = append(out, r)
			return nil
		})
		if err != nil {
			return err
		}
		details := tx.Bucket(bucketAttackDetails)
		for i := max(0, len(out)-withDetails); i < len(out); i++ {
			k := attackKey(out[i].StartedAt, out[i].ID)
			v := details.Get(k)
			if v == nil {
				continue
			}
			d, err := decodeDetails(v)
			if err != nil {
				fail(k, fmt.Errorf("details: %w", err))
				continue
			}
			out[i].Details = d
		}
		return nil
	})
	if bad > 0 {
		s.undecodable.Add(uint64(bad))
		s.log.Warn("skipping stored attacks that do not decode", "records", bad, "first", firstErr)
	}
	return out, err
}
