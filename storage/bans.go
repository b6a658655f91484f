package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/flowshield/flowshield/detect"
)

// BanRecord is one desired ban as the store keeps it: what the ban
// manager needs to take it up again after a restart.
type BanRecord struct {
	Prefix    netip.Prefix
	Direction detect.Direction
	Actions   []string
	Reason    string
	AttackID  string // "" for a manual ban
	Manual    bool
	CreatedAt time.Time
	ExpiresAt time.Time
	BanTime   time.Duration // what an extension adds; kept in whole seconds
}

// BanKey is the key of the ban of p in direction d: there is one ban per
// prefix and direction.
func BanKey(p netip.Prefix, d detect.Direction) string { return p.String() + "|" + d.String() }

// Key is the ban's BanKey.
func (b BanRecord) Key() string { return BanKey(b.Prefix, b.Direction) }

// BadRecord is a stored value that does not decode, for the caller to
// delete by its Key.
type BadRecord struct {
	Key string
	Err error
}

// banJSON is a BanRecord on disk. Its form has not changed since the
// first version, which wrote it from the ban manager: keep it readable.
type banJSON struct {
	Prefix    string    `json:"prefix"`
	Direction string    `json:"direction"`
	Actions   []string  `json:"actions"`
	Reason    string    `json:"reason"`
	AttackID  string    `json:"attack_id,omitempty"`
	Manual    bool      `json:"manual,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	BanTimeS  int64     `json:"ban_time_s"`
}

func encodeBan(b BanRecord) ([]byte, error) {
	return json.Marshal(banJSON{
		Prefix: b.Prefix.String(), Direction: b.Direction.String(), Actions: b.Actions,
		Reason: b.Reason, AttackID: b.AttackID, Manual: b.Manual,
		CreatedAt: b.CreatedAt.UTC(), ExpiresAt: b.ExpiresAt.UTC(), BanTimeS: int64(b.BanTime / time.Second),
	})
}

func decodeBan(v []byte) (BanRecord, error) {
	var j banJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return BanRecord{}, err
	}
	p, err := netip.ParsePrefix(j.Prefix)
	if err != nil {
		return BanRecord{}, err
	}
	d, err := parseDirection(j.Direction)
	if err != nil {
		return BanRecord{}, err
	}
	return BanRecord{
		Prefix: p.Masked(), Direction: d, Actions: j.Actions, Reason: j.Reason, AttackID: j.AttackID, Manual: j.Manual,
		CreatedAt: j.CreatedAt, ExpiresAt: j.ExpiresAt, BanTime: time.Duration(j.BanTimeS) * time.Second,
	}, nil
}

func parseDirection(s string) (detect.Direction, error) {
	switch s {
	case "in":
		return detect.In, nil
	case "out":
		return detect.Out, nil
	}
	return detect.In, fmt.Errorf("bad direction %q", s)
}

// LoadBans returns the stored bans in key order. A value that does not
// decode, or that is stored under another ban's key, is not among them: it
// is in bad, for the caller to delete.
func (s *Store) LoadBans(ctx context.Context) (bans []BanRecord, bad []BadRecord, err error) {
	err = s.view(ctx, "loading bans", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBans).ForEach(func(k, v []byte) error {
			b, err := decodeBan(v)
			if err == nil && b.Key() != string(k) {
				err = fmt.Errorf("stored under %q, is %q", k, b.Key())
			}
			if err != nil {
				bad = append(bad, BadRecord{Key: string(k), Err: err})
				return nil
			}
			bans = append(bans, b)
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	s.undecodable.Add(uint64(len(bad)))
	return bans, bad, nil
}

// UpdateBans writes put and deletes the bans under the keys del in one
// transaction; a batch equal to what is stored commits nothing.
func (s *Store) UpdateBans(ctx context.Context, put []BanRecord, del []string) error {
	values := make(map[string][]byte, len(put))
	for _, b := range put {
		v, err := encodeBan(b)
		if err != nil {
			return fmt.Errorf("saving ban %s in %s: %w", b.Key(), s.path, err)
		}
		values[b.Key()] = v
	}
	return s.saveBatch(ctx, bucketBans, "saving bans", values, del)
}
