package flashsim

import (
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// A store interns immutable values by content, process-wide: equal values
// are one value, shared by every part that holds it, and the garbage
// collector frees a value once no part holds it (the store keeps only a weak
// pointer). Unlike the unique package it says whether a value was new, which
// tells a page only one device has (its identity, say) from one the fleet
// shares, and it costs about 40 bytes of heap and 24 of runtime records per
// value where unique costs about 190 and 57: most of a parked device's own
// flash is such overhead on its few own values.
//
// A value whose hash collides with a different live value is returned
// unstored: it is only not shared, as pointer equality of stored values
// stands for equal content but nothing depends on the converse.
type store[T any] struct {
	shards [storeShards]storeShard[T]
}

// storeShards spreads a store over locks, so that devices on different
// goroutines seldom wait for each other.
const storeShards = 64

type storeShard[T any] struct {
	mu    sync.Mutex
	m     map[uint64]weak.Pointer[T]
	swept int // len(m) after the last sweep
	peak  int // the largest len(m) since the map was made
}

func newStore[T any]() *store[T] {
	s := new(store[T])
	allStores.mu.Lock()
	allStores.s = append(allStores.s, s)
	allStores.mu.Unlock()
	return s
}

// intern returns the stored value that has hash h and for which same
// reports true; if there is none it stores and returns make(), reporting it
// fresh.
func (s *store[T]) intern(h uint64, same func(*T) bool, make func() *T) (v *T, fresh bool) {
	sh := &s.shards[h%storeShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if w, ok := sh.m[h]; ok {
		if v := w.Value(); v != nil {
			if same(v) {
				return v, false
			}
			return make(), true // a collision: v stays, the new value is not shared
		}
	}
	v = make()
	if sh.m == nil {
		sh.m = map[uint64]weak.Pointer[T]{}
	}
	sh.m[h] = weak.Make(v)
	sh.peak = max(sh.peak, len(sh.m))
	if len(sh.m) > 2*sh.swept+64 {
		sh.sweep()
	}
	return v, true
}

// sweep drops the entries of values the garbage collector has freed. It
// runs when a shard has doubled since its last sweep, so its cost is
// amortized over the insertions, and after every collection (sweepStores),
// so that a fleet that is dropped gives its entries back. A map that has
// shrunk to a quarter of its peak is rebuilt, because a Go map never
// returns the memory of deleted entries.
func (sh *storeShard[T]) sweep() {
	for h, w := range sh.m {
		if w.Value() == nil {
			delete(sh.m, h)
		}
	}
	if len(sh.m) < sh.peak/4 {
		m := make(map[uint64]weak.Pointer[T], len(sh.m))
		for h, w := range sh.m {
			m[h] = w
		}
		sh.m, sh.peak = m, len(m)
	}
	sh.swept = len(sh.m)
}

func (s *store[T]) sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if len(sh.m) > 0 {
			sh.sweep()
		}
		sh.mu.Unlock()
	}
}

// allStores lists every store, for sweepStores. Stores belong to tree
// shapes, which live as long as the process.
var allStores struct {
	mu sync.Mutex
	s  []interface{ sweep() }
}

// gcTick is an object made only to be collected: its cleanup runs once
// after each garbage collection, sweeps the stores and makes the next one.
// It holds a pointer so that it is not a tiny allocation, which could share
// a block with a long-lived object and never be collected.
type gcTick struct{ _ *int }

func init() { sweepAfterNextGC() }

func sweepAfterNextGC() {
	runtime.AddCleanup(new(gcTick), func(struct{}) {
		sweepStores()
		sweepAfterNextGC()
	}, struct{}{})
}

func sweepStores() {
	allStores.mu.Lock()
	stores := append([]interface{ sweep() }(nil), allStores.s...)
	allStores.mu.Unlock()
	for _, s := range stores {
		s.sweep()
	}
}

// hashPointers hashes the addresses of a node's children. Stored values
// stand for their content and never move, so their addresses are a content
// hash of the node; the map's seed is not needed, as no input is chosen by
// an adversary.
func hashPointers[C any](kids *node[C]) uint64 {
	h := uint64(fanout)
	for _, k := range kids {
		h ^= uint64(uintptr(unsafe.Pointer(k)))
		h *= 0x9E3779B97F4A7C15
		h ^= h >> 29
	}
	return h
}
