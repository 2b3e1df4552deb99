// Package tufnano is the device's TUF client: the full client workflow of the
// TUF specification (§5) within the limits of a microcontroller, in the role
// that libtufnano plays on Foundries' MCUs.
//
// It owns metadata parsing (a hand-written, allocation-light JSON reader),
// canonical JSON for signature checks, key and signature verification
// (ed25519, ECDSA P-256, RSA-PSS), the root chain, the timestamp, snapshot and
// targets checks, delegations, and target verification. It accepts metadata
// exactly as FoundriesFactory signs it (capitalised `_type`, `ED25519` and
// `RSA` key types without a scheme, base64 signatures with a `method`, no
// spec_version, no consistent snapshots) and is otherwise as strict as the
// specification.
//
// It knows nothing of HTTP, files or clocks: metadata arrives through a
// Fetcher, trusted metadata is kept through a Store (the MCU's metadata
// flash area), and the reference time for expiry is an argument. Every
// rejection is an *Error with a Kind, so the agent and reports can count them.
// It never imports sim, gateway, scenarios or k6.
package tufnano
