package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Link is a device's network path to the gateway.
type Link struct {
	Name string
	// RTT is the base round-trip time; each round trip adds a uniform
	// jitter in [0, Jitter].
	RTT, Jitter time.Duration
	// Up and Down are the bandwidths in bits per second.
	Up, Down int64
	// Loss is the chance that a request or a response loses a segment and
	// waits one retransmission timeout.
	Loss float64
	// HandshakeRTTs is the round trips before the first request: TCP's
	// one and a full TLS 1.2 handshake's two (the MCU keeps no session).
	HandshakeRTTs int
	// HandshakeCPU is the device's own time in the handshake: ECDHE and
	// the secure element's signature, verifying the server's chain.
	HandshakeCPU time.Duration
	// Outage cuts the link (a fault sets and clears it).
	Outage bool
}

// mcuHandshake is an MCU's share of a mutual-TLS handshake: a P-256 key
// exchange and chain verification on a Cortex-M at a few hundred MHz and a
// signature in the secure element.
const mcuHandshake = 250 * time.Millisecond

// Profiles are the link classes a scenario names. The figures are typical
// of each technology in the field rather than its peak rates.
var Profiles = map[string]Link{
	"ethernet": {Name: "ethernet", RTT: 2 * time.Millisecond, Jitter: time.Millisecond, Up: 100e6, Down: 100e6,
		HandshakeRTTs: 3, HandshakeCPU: mcuHandshake},
	"wifi": {Name: "wifi", RTT: 30 * time.Millisecond, Jitter: 20 * time.Millisecond, Up: 10e6, Down: 20e6, Loss: 0.002,
		HandshakeRTTs: 3, HandshakeCPU: mcuHandshake},
	"lte-m": {Name: "lte-m", RTT: 150 * time.Millisecond, Jitter: 100 * time.Millisecond, Up: 200e3, Down: 300e3, Loss: 0.01,
		HandshakeRTTs: 3, HandshakeCPU: mcuHandshake},
	"nb-iot": {Name: "nb-iot", RTT: 1500 * time.Millisecond, Jitter: time.Second, Up: 50e3, Down: 25e3, Loss: 0.02,
		HandshakeRTTs: 3, HandshakeCPU: mcuHandshake},
}

// LookupLink returns a copy of the named profile.
func LookupLink(name string) (Link, error) {
	l, ok := Profiles[name]
	if !ok {
		names := make([]string, 0, len(Profiles))
		for n := range Profiles {
			names = append(names, n)
		}
		slices.Sort(names)
		return Link{}, fmt.Errorf("unknown link profile %q (known: %s)", name, strings.Join(names, ", "))
	}
	return l, nil
}
