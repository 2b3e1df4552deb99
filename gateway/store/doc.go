// Package store is the device gateway's durable state on pebble: devices,
// their events, system info and fioconfig files, the rollout controller's
// waves, wave members and device updates, and the firmware index.
//
// It owns the key layout and the record encodings (JSON values, one key
// prefix per record kind, iteration in key order) and the durability of a
// commit: a Batch committed durably is fsynced before Commit returns, so the
// gateway may acknowledge a device event as soon as Commit does.
//
// It knows nothing of HTTP, TLS or rollout decisions: the gateway decides what
// to write, the store only keeps it. It never reads the clock; every time it
// stores is given by the caller.
package store
