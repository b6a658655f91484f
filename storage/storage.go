// Package storage keeps flowshield's durable state in one bbolt file
// (DATA_DIR/flowshield.db): the desired bans, the attack history, the
// exporters' flow templates, and a schema version.
//
// The file usually lives on a router's flash, and bbolt rewrites at least a
// meta page plus every touched leaf and branch page on each commit (about
// 24 KiB for a small change). So the API is shaped for batching: every write
// method takes a whole batch and commits it in one transaction, and a batch
// whose values equal what is already stored commits nothing at all. Callers
// keep live state in memory and write on state changes and in periodic
// snapshots; with that, a quiet hour writes well under 2 MB (see
// TestSteadyStateWriteBytes).
//
// The attack history is bounded in count and bytes (Options.History*) and
// its details shed first, so an attack storm cannot fill the flash. A write
// the store cannot commit returns a *WriteError, counted in Stats.
//
// Bans (BanRecord) and the attack history (AttackRecord) are typed
// records whose disk form is the store's own (bans.go, history_record.go),
// not an API's; records an earlier version wrote stay readable
// (history_record.go). Templates are the callers' bytes.
//
// A damaged file is never fatal: Open moves it aside as
// flowshield.db.corrupt-<timestamp>, logs it, and starts a fresh one; the
// caller rebuilds what it can (bans from the routers) and reports
// Store.Recovered.
package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is written to the meta bucket of every file this code creates.
const SchemaVersion = 1

var (
	bucketBans    = []byte("bans")
	bucketAttacks = []byte("attacks")
	// bucketAttackDetails holds each attack's heavy part (details text and
	// flow sample) under the attack's key: written once, when known, so
	// the updates at start and end rewrite a few hundred bytes, not 16 KB.
	bucketAttackDetails = []byte("attack_details")
	bucketTemplates     = []byte("templates")
	bucketMeta          = []byte("meta")

	keySchema = []byte("schema_version")

	allBuckets = [][]byte{bucketBans, bucketAttacks, bucketAttackDetails, bucketTemplates, bucketMeta}
)

// ErrLocked is returned (wrapped, with the file name) when another process
// holds the database file longer than Options.LockTimeout.
var ErrLocked = errors.New("database file is locked by another process")

// WriteError is a write the store could not commit: the disk is full,
// read-only or failing, or the store is closed. Nothing of the batch was
// written. Callers tell it with errors.As (an HTTP API answers 503: the
// request was fine, the store is not); Stats.WriteFailures counts them.
type WriteError struct {
	Op   string // what was written, e.g. "saving bans"
	Path string // the database file
	Err  error
}

func (e *WriteError) Error() string { return fmt.Sprintf("%s in %s: %v", e.Op, e.Path, e.Err) }

func (e *WriteError) Unwrap() error { return e.Err }

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; another flowshield using
	// the same DATA_DIR is the usual cause.
	LockTimeout time.Duration
	// HistoryMinAge and HistoryMinCount bound the attack history: an ended
	// attack is kept while it ended within HistoryMinAge or is among the last
	// HistoryMinCount, whichever keeps more (the contract: 24 h or 1,000).
	HistoryMinAge   time.Duration
	HistoryMinCount int
	// HistoryMaxCount is a hard cap that protects the flash when a storm of
	// attacks would otherwise keep everything of the last 24 hours.
	HistoryMaxCount int
	// HistoryMaxBytes bounds the history's keys and values (both buckets)
	// beyond the HistoryMinCount most recently ended attacks, which are
	// always kept whole: past it the oldest ended lose their details, then
	// go (see trimPlan). The default, 64 MiB, holds the 1,000 kept whole
	// (~12.5 KB each with a 40-flow sample), the summaries (~230 bytes) of
	// HistoryMaxCount attacks, and details for a few thousand more: so the
	// contract's 24 hours hold for up to 100,000 attacks a day. bbolt
	// never shrinks its file, but reuses its free pages: in a storm the
	// file stays under 2 x HistoryMaxBytes (measured: 81 MiB after 20,000
	// attacks, 97 MiB after 60,000 and after 100,000; TestAttackStormFileSize).
	HistoryMaxBytes int64
	Logger          *slog.Logger
	// Now is the clock used for pruning and for the corrupt file's name.
	Now func() time.Time
}

// DefaultOptions are the contract's bounds and a 5 s lock wait.
func DefaultOptions() Options {
	return Options{
		LockTimeout:     5 * time.Second,
		HistoryMinAge:   24 * time.Hour,
		HistoryMinCount: 1000,
		HistoryMaxCount: 100_000,
		HistoryMaxBytes: 64 << 20,
	}
}

// Stats count what the store did since Open.
type Stats struct {
	Commits       uint64 // write transactions that changed something
	SkippedWrites uint64 // batches that equalled the stored values: no commit
	// WriteFailures counts the writes that failed (each returned a
	// *WriteError): the disk full, read-only or failing.
	WriteFailures uint64
	Undecodable   uint64 // stored bans and attacks that did not decode at a load

	// The attack history now: its records (active and ended), and the
	// bytes of their keys and values, details included.
	HistoryRecords int64
	HistoryBytes   int64
	// HistoryDetailsShed counts the records that lost their details to
	// HistoryMaxBytes (still listed), HistoryEvicted those removed whole by
	// any bound, and HistoryEvictedEarly those of them that had ended
	// within HistoryMinAge: the byte or count cap overrode the 24 hours.
	HistoryDetailsShed  uint64
	HistoryEvicted      uint64
	HistoryEvictedEarly uint64
}

// Store is an open flowshield database. Its methods are safe for concurrent use.
type Store struct {
	db        *bolt.DB
	path      string
	opts      Options
	log       *slog.Logger
	recovered string

	commits, skipped, writeFailures, undecodable atomic.Uint64
	evicted, evictedEarly, shed                  atomic.Uint64

	// attacks and historyBytes are the history's records and bytes,
	// measured at open and kept by the writers (bbolt has one writer at a
	// time), so a save need not walk the history to know whether it is
	// over its bounds.
	attacks, historyBytes atomic.Int64
	// lastPrune is when the history was last walked (Unix ns): for age, at
	// most once a minute, unless over the hard cap or trimAt.
	lastPrune atomic.Int64
	// trimAt is the history's bytes past which a save walks it: at least
	// HistoryMaxBytes, more when what the bound may not touch takes more.
	trimAt atomic.Int64
}

// Open opens (or creates) the database at path. A damaged file is moved aside
// and replaced by an empty one (see Recovered); a file locked by another
// process gives an error wrapping ErrLocked that names the file.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	def := DefaultOptions()
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = def.LockTimeout
	}
	if opts.HistoryMinAge <= 0 {
		opts.HistoryMinAge = def.HistoryMinAge
	}
	if opts.HistoryMinCount <= 0 {
		opts.HistoryMinCount = def.HistoryMinCount
	}
	if opts.HistoryMaxCount < opts.HistoryMinCount {
		opts.HistoryMaxCount = max(def.HistoryMaxCount, opts.HistoryMinCount)
	}
	if opts.HistoryMaxBytes <= 0 {
		opts.HistoryMaxBytes = def.HistoryMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	s := &Store{path: path, opts: opts, log: opts.Logger.With("component", "storage", "file", path)}
	s.trimAt.Store(opts.HistoryMaxBytes)

	// A marker left by an open that never finished means the last process
	// died inside bbolt's open (damage it could not report as an error):
	// treat the file as damaged instead of crashing again.
	marker := path + ".opening"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory for %s: %w", path, err)
	}
	verr := verify(path, opts.LockTimeout)
	if _, err := os.Stat(marker); err == nil && verr == nil {
		verr = fmt.Errorf("an earlier open of %s did not finish (marker %s)", path, marker)
	}
	if err := verr; err != nil {
		if !damaged(err) {
			return nil, err
		}
		if aerr := s.moveAside(err); aerr != nil {
			return nil, aerr
		}
	}

	if err := os.WriteFile(marker, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
		return nil, fmt.Errorf("writing open marker %s: %w", marker, err)
	}
	db, err := openBolt(path, opts.LockTimeout, false)
	if err != nil && damaged(err) && s.recovered == "" {
		// Damage the read-only check could not see: set it aside once.
		if aerr := s.moveAside(err); aerr != nil {
			return nil, aerr
		}
		db, err = openBolt(path, opts.LockTimeout, false)
	}
	if err != nil {
		os.Remove(marker)
		return nil, err
	}
	os.Remove(marker)
	s.db = db
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// damaged tells the file's own damage from the system's refusals (lock
// held, permission denied, missing directory, disk errors): only the first
// justifies moving the file aside.
func damaged(err error) bool {
	if errors.Is(err, ErrLocked) {
		return false
	}
	var pathErr *fs.PathError
	var errno syscall.Errno
	return !errors.As(err, &pathErr) && !errors.As(err, &errno)
}

// moveAside renames the damaged file to <path>.corrupt-<timestamp>.
func (s *Store) moveAside(cause error) error {
	aside := fmt.Sprintf("%s.corrupt-%s", s.path, s.opts.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(s.path, aside); err != nil {
		return fmt.Errorf("moving damaged database %s aside (%v): %w", s.path, cause, err)
	}
	s.recovered = aside
	s.log.Error("database file is damaged; moved aside and starting with an empty one (bans are rebuilt from the routers)",
		"error", cause, "moved_to", aside)
	return nil
}

// boltOptions are chosen for flash: NoFreelistSync saves writing the
// freelist page on every commit (it is rebuilt by a scan at open, cheap for a
// file this small); the hashmap freelist keeps that scan fast.
func boltOptions(lockTimeout time.Duration, readOnly bool) *bolt.Options {
	return &bolt.Options{
		Timeout:        lockTimeout,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		ReadOnly:       readOnly,
	}
}

// openBolt opens the file, turning panics and memory faults of a damaged
// file into errors.
func openBolt(path string, lockTimeout time.Duration, readOnly bool) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("opening database %s: panic: %v", path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, boltOptions(lockTimeout, readOnly))
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening database %s: %w (waited %s; is another flowshield using the same DATA_DIR?)", path, ErrLocked, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("opening database %s: %w", path, err)
	}
	return db, nil
}

// verify checks an existing file before it is opened for writing: bbolt's
// writable open with NoFreelistSync walks the whole tree in a goroutine that
// panics (uncatchably) on damage, so the walk is done first, read-only, here
// in a goroutine whose panics and faults are recovered.
func verify(path string, lockTimeout time.Duration) (err error) {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking database %s: %w", path, err)
	}
	if info.Size() == 0 {
		return nil // bbolt initialises an empty file
	}
	db, err := openBolt(path, lockTimeout, true)
	if err != nil {
		return err
	}
	defer db.Close()

	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("checking database %s: panic: %v", path, r)
		}
	}()
	return db.View(func(tx *bolt.Tx) error {
		// Pages past the end of the file would fault on access.
		if tx.Size() > info.Size() {
			return fmt.Errorf("database %s is truncated: %d bytes, needs %d", path, info.Size(), tx.Size())
		}
		// tx.Check is not used: on a file without a synced freelist it
		// rebuilds the freelist in a goroutine that panics on damage.
		return walk(tx.Cursor(), 0)
	})
}

// walk reads every key and value, recursing into nested buckets.
func walk(c *bolt.Cursor, depth int) error {
	if depth > 8 {
		return errors.New("buckets nested too deep")
	}
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			b := c.Bucket().Bucket(k)
			if b == nil {
				continue
			}
			_ = b.Stats() // visits every page of the bucket
			if err := walk(b.Cursor(), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s in %s: %w", name, s.path, err)
			}
		}
		s.attacks.Store(int64(tx.Bucket(bucketAttacks).Stats().KeyN))
		s.historyBytes.Store(bucketBytes(tx.Bucket(bucketAttacks)) + bucketBytes(tx.Bucket(bucketAttackDetails)))
		meta := tx.Bucket(bucketMeta)
		if v := meta.Get(keySchema); len(v) == 8 {
			if got := binary.BigEndian.Uint64(v); got > SchemaVersion {
				// A newer flowshield wrote this file. The values are opaque to
				// the store and consumers skip what they cannot decode, so
				// carry on rather than refuse to start.
				s.log.Warn("database was written by a newer schema", "schema_version", got, "supported", SchemaVersion)
			}
			return nil
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], SchemaVersion)
		return meta.Put(keySchema, v[:])
	})
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Recovered is where a damaged file was moved at Open, or "" if none was.
func (s *Store) Recovered() string { return s.recovered }

// Close closes the file.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing database %s: %w", s.path, err)
	}
	return nil
}

// bucketBytes is the bytes of b's keys and values. The cursor reads the
// leaf pages only: a large value's own pages are not touched.
func bucketBytes(b *bolt.Bucket) int64 {
	var n int64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n += int64(len(k) + len(v))
	}
	return n
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Commits: s.commits.Load(), SkippedWrites: s.skipped.Load(),
		WriteFailures: s.writeFailures.Load(), Undecodable: s.undecodable.Load(),
		HistoryRecords: s.attacks.Load(), HistoryBytes: s.historyBytes.Load(),
		HistoryDetailsShed: s.shed.Load(), HistoryEvicted: s.evicted.Load(), HistoryEvictedEarly: s.evictedEarly.Load(),
	}
}

// SchemaVersion reads the file's schema version.
func (s *Store) SchemaVersion(ctx context.Context) (uint64, error) {
	var ver uint64
	err := s.view(ctx, "reading schema version", func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); len(v) == 8 {
			ver = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return ver, err
}

func (s *Store) view(ctx context.Context, what string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	return nil
}

// update commits fn unless changed (run first in a read transaction)
// says the batch would change nothing. A failure of the store is a
// *WriteError, counted; a context that ended is not.
func (s *Store) update(ctx context.Context, what string, changed func(*bolt.Tx) bool, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s in %s: %w", what, s.path, err)
	}
	if changed != nil {
		var c bool
		if err := s.db.View(func(tx *bolt.Tx) error { c = changed(tx); return nil }); err != nil {
			return s.writeFailed(what, err)
		}
		if !c {
			s.skipped.Add(1)
			return nil
		}
	}
	if err := s.db.Update(fn); err != nil {
		return s.writeFailed(what, err)
	}
	s.commits.Add(1)
	return nil
}

func (s *Store) writeFailed(what string, err error) error {
	s.writeFailures.Add(1)
	return &WriteError{Op: what, Path: s.path, Err: err}
}

// batchChanges reports whether putting put (nil value: delete) and deleting
// del would change bucket b.
func batchChanges(b *bolt.Bucket, put map[string][]byte, del []string) bool {
	for k, v := range put {
		old := b.Get([]byte(k))
		if v == nil {
			if old != nil {
				return true
			}
			continue
		}
		if old == nil || !bytes.Equal(old, v) {
			return true
		}
	}
	for _, k := range del {
		if b.Get([]byte(k)) != nil {
			return true
		}
	}
	return false
}

func applyBatch(b *bolt.Bucket, put map[string][]byte, del []string) error {
	for k, v := range put {
		if v == nil {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
			continue
		}
		if old := b.Get([]byte(k)); old != nil && bytes.Equal(old, v) {
			continue // an unchanged key dirties no page
		}
		if err := b.Put([]byte(k), v); err != nil {
			return err
		}
	}
	for _, k := range del {
		if err := b.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) saveBatch(ctx context.Context, bucket []byte, what string, put map[string][]byte, del []string) error {
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	return s.update(ctx, what,
		func(tx *bolt.Tx) bool { return batchChanges(tx.Bucket(bucket), put, del) },
		func(tx *bolt.Tx) error { return applyBatch(tx.Bucket(bucket), put, del) })
}

func (s *Store) loadAll(ctx context.Context, bucket []byte, what string) (map[string][]byte, error) {
	out := make(map[string][]byte)
	err := s.view(ctx, what, func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// LoadTemplates returns the stored exporter templates, keyed by the caller's
// exporter+domain key.
func (s *Store) LoadTemplates(ctx context.Context) (map[string][]byte, error) {
	return s.loadAll(ctx, bucketTemplates, "loading templates")
}

// SaveTemplates upserts templates (a nil value deletes one) in one
// transaction; unchanged ones cost nothing, so a periodic snapshot of all of
// them is cheap.
func (s *Store) SaveTemplates(ctx context.Context, templates map[string][]byte) error {
	return s.saveBatch(ctx, bucketTemplates, "saving templates", templates, nil)
}
