package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
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
// history within its bounds in the same commit. A record that does not
// encode (a peak that is not a finite number) is left out and named in
// the error; the others are saved.
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
	var added, pruned int64
	err := s.update(ctx, "saving attacks",
		func(tx *bolt.Tx) bool {
			return batchChanges(tx.Bucket(bucketAttacks), put, nil) || batchChanges(tx.Bucket(bucketAttackDetails), details, nil)
		},
		func(tx *bolt.Tx) error {
			added, pruned = 0, 0
			b := tx.Bucket(bucketAttacks)
			for k := range put {
				if b.Get([]byte(k)) == nil {
					added++
				}
			}
			if err := applyBatch(b, put, nil); err != nil {
				return err
			}
			if err := applyBatch(tx.Bucket(bucketAttackDetails), details, nil); err != nil {
				return err
			}
			// Walking the history costs a read of every record: only when
			// over the hard cap, or once a minute when past the count that
			// is always kept (age decides then).
			n := s.attacks.Load() + added
			now := s.opts.Now().UnixNano()
			if n > int64(s.opts.HistoryMaxCount) ||
				n > int64(s.opts.HistoryMinCount) && now-s.lastPrune.Load() >= int64(time.Minute) {
				s.lastPrune.Store(now)
				var err error
				pruned, err = s.prune(tx, n)
				return err
			}
			return nil
		})
	if err == nil {
		s.attacks.Add(added - pruned)
	}
	return errors.Join(append(skipped, err)...)
}

// PruneAttacks applies the history bounds now.
func (s *Store) PruneAttacks(ctx context.Context) error {
	var pruned int64
	err := s.update(ctx, "pruning attacks",
		func(tx *bolt.Tx) bool { return len(s.prunable(tx.Bucket(bucketAttacks), int(s.attacks.Load()))) > 0 },
		func(tx *bolt.Tx) error {
			var err error
			pruned, err = s.prune(tx, s.attacks.Load())
			return err
		})
	if err == nil {
		s.attacks.Add(-pruned)
	}
	return err
}

// prunable lists the keys beyond the bounds: oldest first, an ended attack
// goes when more than HistoryMinCount remain and it ended before
// now-HistoryMinAge, or when more than HistoryMaxCount remain.
func (s *Store) prunable(b *bolt.Bucket, n int) [][]byte {
	if n <= s.opts.HistoryMinCount {
		return nil
	}
	cutoff := s.opts.Now().Add(-s.opts.HistoryMinAge).UnixNano()
	type cand struct {
		key   []byte
		ended int64
	}
	var ended []cand
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) < 8 {
			ended = append(ended, cand{bytes.Clone(k), 0}) // undecodable: first to go
			continue
		}
		if e := int64(binary.BigEndian.Uint64(v)); e != 0 {
			ended = append(ended, cand{bytes.Clone(k), e})
		}
	}
	// Drop the longest-ended first, so "the last N" means the most recent.
	sort.SliceStable(ended, func(i, j int) bool { return ended[i].ended < ended[j].ended })
	var out [][]byte
	for _, c := range ended {
		if n <= s.opts.HistoryMinCount {
			break
		}
		if c.ended >= cutoff && n <= s.opts.HistoryMaxCount {
			break
		}
		out = append(out, c.key)
		n--
	}
	return out
}

// prune deletes the records beyond the bounds, with their details, and
// says how many; n is how many records the history holds.
func (s *Store) prune(tx *bolt.Tx, n int64) (int64, error) {
	b, d := tx.Bucket(bucketAttacks), tx.Bucket(bucketAttackDetails)
	keys := s.prunable(b, int(n))
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
		if err := d.Delete(k); err != nil {
			return 0, err
		}
	}
	s.pruned.Add(uint64(len(keys)))
	return int64(len(keys)), nil
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
