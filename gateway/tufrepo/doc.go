// Package tufrepo owns the gateway's signed TUF repository: the root chain,
// the per-tag targets, snapshot and timestamp metadata that MCUs fetch from
// /repo/*.json, the signing keys, and the rules that keep it servable to
// devices with a 16 KiB metadata buffer (aktualizr-nano, libtufnano).
//
// # Layout, as Foundries serves it
//
// One root chain serves the whole repository; every version is kept and
// served as {N}.root.json. Each device tag has its own view: a targets.json
// holding exactly the targets whose custom.tags contain the tag, with its own
// snapshot.json and timestamp.json, all signed by the same targets, snapshot
// and timestamp keys. This mirrors Foundries' production targets, which are
// per tag, and keeps an MCU's targets.json small: a device only ever sees its
// own tag's targets. By default the non-root roles are served unversioned
// (timestamp.json, snapshot.json, targets.json; consistent_snapshot false);
// Config.ConsistentSnapshot also serves {N}.snapshot.json and {N}.targets.json.
//
// Targets carry Foundries' MCU custom fields (hardwareIds, tags, version as a
// string holding the MCUboot build number, targetFormat) and are named
// <hwid>-v<version>.
//
// # Waves
//
// Production targets of a tag change only through waves (Foundries waves,
// foundries.md §4). OpenWave stages the targets of one version for a tag in
// a wave view, named WaveView(tag, wave) ("tag@wave"): the tag's targets
// plus the staged ones, each staged target carrying exactly the tag. The
// gateway serves the wave view to the devices a rollout step has released
// and the tag view to everyone else. CompleteWave makes the staged targets
// the tag's own; CancelWave withdraws them. Either way the wave view goes
// and its devices return to the tag view. A tag has at most one open wave.
//
// A device switching views must never see a role's version go down, which
// a TUF client refuses as a rollback attack. So, per role (timestamp,
// snapshot, targets): (1) while a wave is open, its view's version is
// strictly above the tag view's, and whenever the tag view is re-signed its
// wave view is re-signed after it; (2) when the wave closes, the tag view
// is re-signed with every version strictly above the wave view's last.
// Both come from one rule: a re-signed role takes the version
// max(own + 1, floor), the floor being the other view's version + 1.
// Versions only grow, so a device that trusted any view of the tag accepts
// every view it can be moved to, including a later wave's.
//
// # Bytes as served
//
// Every file is compact canonical JSON and its signed section is the exact
// canonical form the signatures cover, so a device can verify the bytes it
// received without re-encoding them. The one exception is forced by JSON
// itself: the canonical form of TUF (OLPC canonical JSON, what go-tuf and
// python-tuf sign and verify) leaves control characters inside strings raw,
// which is not valid JSON. The only such strings are the PEM public keys of
// RSA and ECDSA keys in root.json; there a newline is served as the two
// characters \n, and a byte-verifying client turns "\n" back into a newline
// before checking the signature. Ed25519-only repositories, the default, are
// byte-exact everywhere.
//
// # What it must not know
//
// The package knows nothing of HTTP, devices, rollouts or the simulator
// (which devices are in a wave is the rollout controller's business):
// operations take the time as an argument (now), randomness as an io.Reader,
// and storage is either memory or a data directory written through atomic
// renames on a vfs.FS (the disk, or pebble's file system in memory). The gateway decides which tag a device sees and maps the typed
// errors to HTTP statuses.
package tufrepo
