package tufrepo

import (
	"io"
	"time"
)

// Default expiry periods. Roots live a year, like Foundries' roots, because
// rotating them needs the offline root key. Targets last a quarter: they are
// re-signed whenever firmware is added or pruned anyway. Snapshot and
// timestamp are online roles re-signed by Renew; a timestamp that lives one
// day bounds how long a freeze attack can hide new firmware from a device,
// while a device polling every 15 s never sees it expire as long as the
// gateway renews. The snapshot lives a week so one missed renewal does not
// take the fleet down.
const (
	DefaultRootExpiry      = 365 * 24 * time.Hour
	DefaultTargetsExpiry   = 90 * 24 * time.Hour
	DefaultSnapshotExpiry  = 7 * 24 * time.Hour
	DefaultTimestampExpiry = 24 * time.Hour
)

// DefaultDeviceBuffer is aktualizr-nano's TUF metadata limit: its 17,408-byte
// response buffer less 1 KiB for headers (foundries.md §1.4).
const DefaultDeviceBuffer = 16 * 1024

// DefaultMaxSignatures is the number of signatures per role aktualizr-nano
// compiles libtufnano for; more makes it fail with FIELD_COUNT_EXCEEDED.
const DefaultMaxSignatures = 2

// Expiry holds the validity period of each role's metadata, counted from the
// time it is signed. A zero field takes the default.
type Expiry struct {
	Root, Targets, Snapshot, Timestamp time.Duration
}

// For returns the period of role r.
func (e Expiry) For(r Role) time.Duration {
	switch r {
	case RoleRoot:
		return e.Root
	case RoleTargets:
		return e.Targets
	case RoleSnapshot:
		return e.Snapshot
	default:
		return e.Timestamp
	}
}

// Config tunes a repository. The zero Config is usable: default expiries,
// 16 KiB device buffer, two signatures per role, no consistent snapshots.
type Config struct {
	// Expiry sets each role's validity. Renew re-signs a role once less
	// than half of its period is left.
	Expiry Expiry
	// DeviceBuffer is the largest metadata file a device can hold; a
	// bigger served file raises a WarnBufferExceeded.
	DeviceBuffer int
	// MaxSignatures is the most signatures per file a device accepts; a
	// file with more raises a WarnTooManySignatures.
	MaxSignatures int
	// ConsistentSnapshot sets consistent_snapshot in root and also serves
	// {N}.snapshot.json and {N}.targets.json. Off by default, as on
	// Foundries, whose MCU client fetches unversioned names.
	ConsistentSnapshot bool
	// Random supplies RSA-PSS salts. Needed only when a role has an RSA
	// key; it is never stored. Ed25519 and ECDSA signatures are
	// deterministic and do not use it.
	Random io.Reader `json:"-"`
}

func (c Config) withDefaults() Config {
	if c.Expiry.Root == 0 {
		c.Expiry.Root = DefaultRootExpiry
	}
	if c.Expiry.Targets == 0 {
		c.Expiry.Targets = DefaultTargetsExpiry
	}
	if c.Expiry.Snapshot == 0 {
		c.Expiry.Snapshot = DefaultSnapshotExpiry
	}
	if c.Expiry.Timestamp == 0 {
		c.Expiry.Timestamp = DefaultTimestampExpiry
	}
	if c.DeviceBuffer == 0 {
		c.DeviceBuffer = DefaultDeviceBuffer
	}
	if c.MaxSignatures == 0 {
		c.MaxSignatures = DefaultMaxSignatures
	}
	return c
}

func (c Config) validate() error {
	for _, r := range allRoles {
		d := c.Expiry.For(r)
		if d < time.Second {
			return badConfig("%s expiry %v: must be at least one second", r, d)
		}
	}
	if c.DeviceBuffer < 0 {
		return badConfig("device buffer %d: must not be negative", c.DeviceBuffer)
	}
	if c.MaxSignatures < 0 {
		return badConfig("max signatures %d: must not be negative", c.MaxSignatures)
	}
	return nil
}

// expiresAt is now plus d, in UTC and truncated to whole seconds: libtufnano
// parses expires only as %Y-%m-%dT%H:%M:%SZ, without fractions.
func expiresAt(now time.Time, d time.Duration) time.Time {
	return time.Unix(now.Add(d).Unix(), 0).UTC()
}

// due reports whether metadata expiring at exp should be re-signed at now:
// less than half its period is left.
func due(now, exp time.Time, period time.Duration) bool {
	return !now.Add(period / 2).Before(exp)
}
